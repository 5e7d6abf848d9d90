#!/usr/bin/env bash
# `make stop`: stop the Airflow process group that `make run` started (by PGID).
set -uo pipefail
cd "$(dirname "$0")/.."
AIRFLOW_HOME="${AIRFLOW_HOME:-$(pwd)/airflow_home}"
PIDFILE="$AIRFLOW_HOME/standalone.pgid"
if [ ! -f "$PIDFILE" ]; then
  echo "nothing to stop (no $PIDFILE)"
  exit 0
fi
PGID="$(cat "$PIDFILE")"
if kill -TERM -- "-$PGID" 2>/dev/null; then
  for _ in $(seq 1 30); do
    kill -0 -- "-$PGID" 2>/dev/null || break
    sleep 1
  done
  kill -0 -- "-$PGID" 2>/dev/null && kill -KILL -- "-$PGID" 2>/dev/null
  echo "stopped airflow (process group $PGID)"
else
  echo "airflow (process group $PGID) was not running"
fi
rm -f "$PIDFILE"
