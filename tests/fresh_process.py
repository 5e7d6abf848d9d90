"""Run a DAG for a date the way a user does: `airflow dags test` in a fresh process.

No warm GX context, no module state from earlier tests: each call is a new interpreter that
imports the DAG file, runs every task and exits. The caller's environment (REVIEWFLOW_LAKE,
AIRFLOW_HOME from conftest) is inherited; ``env`` adds to it, ``conf`` is the run's conf.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass

# The run's own line, e.g. "DagRun Finished: dag_id=..., run_id=manual__..., ..., state=success, ...".
# Task lines carry "previous_state=" / "new_state=" too, so "state=" alone is not the run's state.
_FINISHED = re.compile(r"DagRun Finished: .*?\brun_id=([^,\s]+).*?\bstate=(?:DagRunState\.)?(\w+)", re.IGNORECASE)
# Fallback: "Marking run <DagRun ...> successful" / "... failed"
_MARKED = re.compile(r"Marking run <DagRun [^\n]*?> (successful|failed)")


def parse_run(output: str) -> tuple[str | None, str | None]:
    """(run_id, final state) of the last dag run the output reports finishing, else (None, None)."""
    finished = _FINISHED.findall(output)
    if finished:
        run_id, state = finished[-1]
        return run_id, state.lower()
    marked = _MARKED.findall(output)
    if marked:
        return None, "success" if marked[-1] == "successful" else "failed"
    return None, None


@dataclass
class DagTestResult:
    dag_id: str
    returncode: int
    state: str | None  # the dag run's final state as printed by Airflow, if it got that far
    run_id: str | None
    output: str
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.state == "success"

    def task_states(self) -> dict[tuple[str, int], tuple[str | None, int]]:
        """{(task_id, map_index): (state, try_number)} of this run, from the metadata DB."""
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from sqlalchemy import select

        assert self.run_id, f"{self.dag_id}: no run id in the output"
        with create_session() as session:
            rows = session.execute(
                select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state, TaskInstance.try_number).where(
                    TaskInstance.dag_id == self.dag_id, TaskInstance.run_id == self.run_id
                )
            ).all()
        return {(t, m): (str(s.value if hasattr(s, "value") else s) if s else None, n) for t, m, s, n in rows}

    def tail(self, chars: int = 6000) -> str:
        return self.output[-chars:]


def airflow_dags_test(
    dag_id: str, dt: str, env: dict | None = None, timeout: int = 900, conf: dict | None = None
) -> DagTestResult:
    command = [sys.executable, "-m", "airflow", "dags", "test", dag_id, dt]
    if conf:
        command[5:5] = ["--conf", json.dumps(conf)]  # after "test", before the positionals
    started = time.monotonic()
    proc = subprocess.run(
        command,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # one stream, in the order it was written
        text=True,
        timeout=timeout,
    )
    run_id, state = parse_run(proc.stdout)
    return DagTestResult(dag_id, proc.returncode, state, run_id, proc.stdout, time.monotonic() - started)
