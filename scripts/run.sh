#!/usr/bin/env bash
# `make run`: sample data (or DATA=file) into the lake's landing zone, Airflow standalone on
# 127.0.0.1 in the background, the pipeline run by the scheduler, a summary; the UI stays up.
set -euo pipefail
cd "$(dirname "$0")/.."
DAYS="${DAYS:-3}"
ROWS="${ROWS:-2000}"
DATA="${DATA:-}"
PLANT="${PLANT:-0}"  # 1: plant one product incident in DATA (tools/sample_data.py load --plant-incident)

# The sample covers DAYS days ending with the day the nightly DAGs' latest run (03:00 UTC
# scoring) is for: yesterday, or the day before when it is not 03:00 UTC yet. Ingest's catchup
# runs each day; training and scoring run once, over all of them.
START="$(date -u -d "$(date -u -d '-3 hours' +%Y-%m-%d) -${DAYS} days" +%Y-%m-%d)"
export REVIEWFLOW_START_DATE="$START"
. scripts/env.sh
mkdir -p "$AIRFLOW_HOME"
echo "$REVIEWFLOW_START_DATE" > "$AIRFLOW_HOME/start_date"
export REVIEWFLOW_LAKE="${REVIEWFLOW_LAKE:-$ROOT/lake}"
# A laptop-sized BERT budget for the demo (the nightly defaults are larger; see README).
export REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES="${REVIEWFLOW_BERT_MAX_TRAIN_SAMPLES:-1000}"
export REVIEWFLOW_BERT_EPOCHS="${REVIEWFLOW_BERT_EPOCHS:-1}"

if [ -n "$DATA" ]; then
  PLANT_ARGS=()
  if [ "$PLANT" = "1" ]; then PLANT_ARGS=(--plant-incident --truth "$AIRFLOW_HOME/planted_truth.json"); fi
  python -m tools.sample_data load --csv "$DATA" --lake "$REVIEWFLOW_LAKE" --days "$DAYS" --start "$START" "${PLANT_ARGS[@]}"
else
  python -m tools.sample_data generate --lake "$REVIEWFLOW_LAKE" --days "$DAYS" \
    --rows-per-day "$ROWS" --start "$START" --dirty-share 0.02 --truth "$AIRFLOW_HOME/planted_truth.json"
fi

bash scripts/start_airflow.sh
python -m tools.run_pipeline --days "$DAYS" --start "$START"
