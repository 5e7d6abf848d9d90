#!/usr/bin/env bash
# Start Airflow the way `airflow standalone` does (LocalExecutor on SQLite: API server + UI,
# scheduler, dag processor, triggerer) in one process group, unless ours is already up; wait
# until it answers. We start the four components ourselves rather than `airflow standalone`
# because standalone's log-serving subprocesses bind every interface (0.0.0.0:8793/8794) in
# Airflow 3.3.2; here the API server binds 127.0.0.1 and the log servers are skipped (task logs
# are read from local files).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
PIDFILE="$AIRFLOW_HOME/standalone.pgid"
URL="http://127.0.0.1:${AIRFLOW__API__PORT}"

if [ -f "$PIDFILE" ] && kill -0 -- "-$(cat "$PIDFILE")" 2>/dev/null; then
  if [ "$(cat "$AIRFLOW_HOME/start_date" 2>/dev/null)" = "${REVIEWFLOW_START_DATE:-}" ]; then
    echo "airflow already running (process group $(cat "$PIDFILE"))"
    exit 0
  fi
  bash scripts/stop.sh  # the DAGs' start date changed: restart so every process sees it
fi

mkdir -p "$AIRFLOW_HOME"
export AIRFLOW__CORE__EXECUTOR=LocalExecutor
airflow db migrate > "$AIRFLOW_HOME/db-migrate.log" 2>&1
setsid bash -c '
  airflow api-server --host 127.0.0.1 --port "$AIRFLOW__API__PORT" 2>&1 | sed -u "s/^/api-server    | /" &
  airflow scheduler --skip-serve-logs 2>&1 | sed -u "s/^/scheduler     | /" &
  airflow dag-processor 2>&1 | sed -u "s/^/dag-processor | /" &
  airflow triggerer --skip-serve-logs 2>&1 | sed -u "s/^/triggerer     | /" &
  wait' > "$AIRFLOW_HOME/standalone.log" 2>&1 < /dev/null &
echo $! > "$PIDFILE"
echo "airflow starting (process group $!, log $AIRFLOW_HOME/standalone.log)"

for _ in $(seq 1 180); do
  if curl -fsS "$URL/api/v2/monitor/health" > /dev/null 2>&1 \
     && [ -f "$AIRFLOW_HOME/simple_auth_manager_passwords.json.generated" ]; then
    echo "Airflow UI up at $URL"
    exit 0
  fi
  if ! kill -0 -- "-$(cat "$PIDFILE")" 2>/dev/null; then
    echo "airflow exited; last lines of its log:" >&2
    tail -30 "$AIRFLOW_HOME/standalone.log" >&2
    exit 1
  fi
  sleep 2
done
echo "Airflow did not answer at $URL within 6 minutes (see $AIRFLOW_HOME/standalone.log)" >&2
exit 1
