"""A small client for Airflow 3's REST API (v2): log in, unpause, trigger, wait for runs.

Used by `make run` (tools/run_pipeline.py) and the integration tests that drive a real
scheduler; standard library only.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path


class APIError(RuntimeError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class AirflowAPI:
    # Seconds between two looks at a run's state: every second of it is a second no task runs between
    # two DAGs of `make run`'s chain (5 s polls were a third of a small chain's idle time).
    poll_seconds = 1.0

    def __init__(self, base_url: str, username: str, password: str):
        self.base = base_url.rstrip("/")
        self.token = self._login(username, password)

    @classmethod
    def for_standalone(cls, airflow_home: str, base_url: str) -> AirflowAPI:
        """Log in as `admin` with the password `airflow standalone` generated."""
        passwords = json.loads((Path(airflow_home) / "simple_auth_manager_passwords.json.generated").read_text())
        return cls(base_url, "admin", passwords["admin"])

    def _request(
        self, method: str, path: str, body: dict | None = None, auth: bool = True, timeout: float = 30
    ) -> dict:
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise APIError(exc.code, f"{method} {path}: HTTP {exc.code}: {exc.read().decode()[:500]}") from exc

    def _login(self, username: str, password: str) -> str:
        return self._request("POST", "/auth/token", {"username": username, "password": password}, auth=False)[
            "access_token"
        ]

    def get(self, path: str) -> dict:
        return self._request("GET", path)

    def wait_for_dag(self, dag_id: str, timeout: float = 300) -> None:
        """Wait until the dag processor has parsed the DAG."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.get(f"/api/v2/dags/{dag_id}")
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(self.poll_seconds)

    def set_paused(self, dag_id: str, paused: bool) -> None:
        self._request("PATCH", f"/api/v2/dags/{dag_id}", {"is_paused": paused})

    def trigger(self, dag_id: str, logical_date: str | None = None, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date, "conf": conf or {}}
        return self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns", body)["dag_run_id"]

    def runs(self, dag_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns?limit=1000&order_by=logical_date")["dag_runs"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances?limit=1000")["task_instances"]

    def wait_for_dates(
        self, dag_id: str, dates: set[str], since: str | None = None, timeout: float = 1800
    ) -> list[dict]:
        """Wait until each logical date (YYYY-MM-DD) has a successful run queued after `since`.

        Fails at once when one of those runs fails.
        """
        deadline = time.monotonic() + timeout
        while True:
            runs = [
                r for r in self.runs(dag_id)
                if (r.get("logical_date") or "")[:10] in dates and (since is None or (r.get("queued_at") or "") >= since)
            ]  # fmt: skip
            failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
            if failed:
                raise RuntimeError(f"{dag_id}: run(s) failed: {failed}")
            done = [r for r in runs if r["state"] == "success"]
            if {r["logical_date"][:10] for r in done} >= dates:
                return done
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}: not all of {sorted(dates)} finished in {timeout}s: "
                                   f"{[(r['logical_date'], r['state']) for r in runs]}")  # fmt: skip
            time.sleep(self.poll_seconds)

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 3600) -> dict:
        """Wait until one run ends; fail if it failed."""
        deadline = time.monotonic() + timeout
        while True:
            run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
            if run["state"] == "failed":
                raise RuntimeError(f"{dag_id}: run {run_id} failed")
            if run["state"] == "success":
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}: run {run_id} still {run['state']} after {timeout}s")
            time.sleep(self.poll_seconds)

    def wait_idle(self, dag_id: str, since: str | None = None, timeout: float = 1800) -> list[dict]:
        """Wait until the DAG has no queued or running run and no asset event waiting to start one.

        Returns its runs queued after `since`; fails at once when one of them failed.
        """
        deadline = time.monotonic() + timeout
        while True:
            runs = [r for r in self.runs(dag_id) if since is None or (r.get("queued_at") or "") >= since]
            if failed := [r["dag_run_id"] for r in runs if r["state"] == "failed"]:
                raise RuntimeError(f"{dag_id}: run(s) failed: {failed}")
            active = [r["dag_run_id"] for r in runs if r["state"] in ("queued", "running")]
            if not active and not self.queued_asset_events(dag_id):
                return runs
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id}: still busy after {timeout}s: {active}")
            time.sleep(self.poll_seconds)

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Rerun every task of a run (the UI's Clear)."""
        self._request("POST", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/clear", {"dry_run": False})

    def queued_asset_events(self, dag_id: str) -> list[dict]:
        """Asset events waiting to trigger a run of the DAG."""
        return self.get(f"/api/v2/dags/{dag_id}/assets/queuedEvents").get("queued_events", [])

    def asset_id(self, name: str) -> int:
        found = [a for a in self.get(f"/api/v2/assets?name_pattern={name}&limit=100")["assets"] if a["name"] == name]
        if not found:
            raise LookupError(f"no asset named {name!r} (has the dag processor parsed its DAGs yet?)")
        return found[0]["id"]

    def emit_asset_event(self, name: str, extra: dict | None = None) -> dict:
        """An asset event from outside Airflow (an external producer): queues the DAGs scheduled on it."""
        return self._request("POST", "/api/v2/assets/events", {"asset_id": self.asset_id(name), "extra": extra or {}})

    def asset_events(self, name: str) -> list[dict]:
        path = f"/api/v2/assets/events?asset_id={self.asset_id(name)}&limit=1000&order_by=timestamp"
        return self.get(path)["asset_events"]

    def triggering_events(self, dag_id: str, run_id: str) -> list[dict]:
        """The asset events a run consumed (what triggered an asset-triggered run)."""
        return self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/upstreamAssetEvents")["asset_events"]

    def backfill(self, dag_id: str, from_date: str, to_date: str, reprocess: str = "completed") -> dict:
        """Create a backfill (run by the scheduler) over the logical dates of days from..to, inclusive."""
        # to the end of to_date: a nightly DAG's logical time is later than midnight (03:00 for scoring)
        body = {"dag_id": dag_id, "from_date": f"{from_date}T00:00:00Z", "to_date": f"{to_date}T23:59:59Z",
                "reprocess_behavior": reprocess, "max_active_runs": 2}  # fmt: skip
        for attempt in range(40):
            try:
                # creating every run of the range happens in this request: give it time on a busy host
                return self._request("POST", "/api/v2/backfills", body, timeout=600)
            except APIError as exc:
                # 503: on SQLite while the scheduler holds the write lock; 409: the scheduler has not
                # yet marked the previous backfill of this DAG complete (it checks periodically).
                retry = exc.status == 503 or (exc.status == 409 and "already a running backfill" in str(exc))
                if not retry or attempt == 39:
                    raise
                time.sleep(3)  # a retry, not a poll
        raise AssertionError("unreachable")
