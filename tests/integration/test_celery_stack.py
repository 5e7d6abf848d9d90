"""The production-like stack for real: CeleryExecutor on PostgreSQL and Redis, plus the Airflow UI.

A module-scoped fixture starts Airflow 3 as docker-compose.yaml does, but on this machine: a fresh
PostgreSQL database (metadata and Celery results), a Redis database as the Celery broker, and the
API server, scheduler, dag processor and one `airflow celery worker`, each in its own process group
and bound to 127.0.0.1 (no log servers: the worker writes task logs to the shared AIRFLOW_HOME,
where the API server reads them). reviews_ingest then runs for two generated days through the REST
API, on the worker, and a browser (Debian chromium via Playwright) checks the run in the UI.

Needs PostgreSQL and Redis on 127.0.0.1 (skips otherwise); the browser test needs /usr/bin/chromium
(`scripts/install_system_deps.sh` installs it). Logs: test-artifacts/celery_stack/.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest

from reviewflow.config import PROJECT_ROOT
from reviewflow.storage.lake import LocalLake, read_json, read_parquet
from tools import sample_data
from tools.airflow_api import AirflowAPI

pytestmark = pytest.mark.services

HOST = "127.0.0.1"
PG_PORT, REDIS_PORT = 5432, 6379
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
LOG_DIR = ARTIFACTS / "celery_stack"
CHROMIUM = "/usr/bin/chromium"
ROWS_PER_DAY = 120
# Two finished days before today (UTC). The DAGs start on the first, so once reviews_ingest is
# unpaused the scheduler's catch-up finds our triggered runs at both dates and creates none.
TODAY = datetime.now(UTC).date()
DATES = [(TODAY - timedelta(days=2)).isoformat(), (TODAY - timedelta(days=1)).isoformat()]
COMPONENTS = ("api-server", "scheduler", "dag-processor", "celery-worker")
BIAS_METRICS = {"CI", "DPL", "KL", "JS", "LP", "TVD", "KS", "CDDL"}


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=2):
        return True
    return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no {path})"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive(p: psutil.Process) -> bool:
    with contextlib.suppress(psutil.Error):
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    return False


def _pids_in_groups(pgids: set[int]) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.getpgid(int(entry)) in pgids:
                    pids.add(int(entry))
    return pids


@dataclass
class Stack:
    home: Path
    lake: str
    port: int
    database: str
    redis_db: int
    queue: str
    password: str
    env: dict[str, str]
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self, name: str) -> Path:
        return LOG_DIR / f"{name}.log"

    def api(self) -> AirflowAPI:
        return AirflowAPI(self.url, "admin", self.password)

    def start(self, name: str, args: list[str]) -> None:
        with self.log(name).open("wb") as out:
            # Its own session, so its process group holds it and every child (uvicorn and Celery
            # pool workers, task supervisors and the task processes they fork) and nothing else.
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "airflow", *args], cwd=PROJECT_ROOT, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def check_running(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{name} exited with {proc.returncode}; last lines of its log:\n{_tail(self.log(name))}"
                )

    def descendants(self) -> dict[int, psutil.Process]:
        """Every live process we started: the leaders, their groups, and their descendants. The Task
        SDK supervisor puts each task (and DAG-parsing) process in a process group of its own, so
        those leave our groups; we find them through their parents while those still live."""
        found = {}
        for proc in self.procs.values():
            with contextlib.suppress(psutil.Error):
                leader = psutil.Process(proc.pid)
                for p in [leader, *leader.children(recursive=True)]:
                    found[p.pid] = p
        for pid in _pids_in_groups({proc.pid for proc in self.procs.values()}):
            with contextlib.suppress(psutil.Error):
                found.setdefault(pid, psutil.Process(pid))
        return found

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM each process group we started, SIGKILL what is left after `timeout` seconds.

        Processes that left our groups (tasks, DAG parsers) get the same, by PID, found as our
        descendants; psutil checks a PID still names the process we saw (no PID reuse)."""
        pgids = {proc.pid for proc in self.procs.values()}
        ours = self.descendants()
        for pgid in pgids:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for proc in self.procs.values():
                proc.poll()  # reap the leaders, or their groups never look empty
            ours.update(self.descendants())
            if not any(_group_alive(pgid) for pgid in pgids) and not any(_alive(p) for p in ours.values()):
                break
            time.sleep(0.5)
        for pgid in pgids:
            if _group_alive(pgid):  # still has members, so the PGID is still ours
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pgid, signal.SIGKILL)
        for p in ours.values():
            if _alive(p):
                with contextlib.suppress(psutil.Error):
                    p.kill()
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        psutil.wait_procs(list(ours.values()), timeout=10)
        left = sorted(_pids_in_groups(pgids) | {p.pid for p in ours.values() if _alive(p)})
        assert not left, f"processes we started still running after SIGKILL: {left}"


def _redis_claim(token: str) -> int:
    """A Redis database number (1..15) nobody uses, claimed with a key so a parallel run skips it."""
    import redis

    for number in range(15, 0, -1):
        client = redis.Redis(host=HOST, port=REDIS_PORT, db=number, socket_timeout=5)
        try:
            if client.dbsize() == 0 and client.set("reviewflow:test-claim", token, nx=True):
                if client.dbsize() == 1:
                    return number
                client.delete("reviewflow:test-claim")
        finally:
            client.close()
    pytest.skip("Redis on 127.0.0.1:6379 has no empty database (1..15) to use as the Celery broker")


def _redis_release(number: int, token: str) -> None:
    import redis

    client = redis.Redis(host=HOST, port=REDIS_PORT, db=number, socket_timeout=5)
    try:
        if client.get("reviewflow:test-claim") == token.encode():
            client.flushdb()  # ours since we claimed it empty: the Celery queues and bindings
    finally:
        client.close()


def _wait_healthy(stack: Stack, timeout: float = 420) -> None:
    """Until the API server says the metadata DB, scheduler and dag processor are healthy and the
    Celery worker answers a ping."""
    import json
    import urllib.request

    from celery import Celery

    deadline = time.monotonic() + timeout
    health: dict = {}
    while True:
        stack.check_running()
        with contextlib.suppress(OSError, ValueError):
            with urllib.request.urlopen(f"{stack.url}/api/v2/monitor/health", timeout=5) as response:
                health = json.loads(response.read())
            wanted = ("metadatabase", "scheduler", "dag_processor")
            if all((health.get(k) or {}).get("status") == "healthy" for k in wanted):
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"Airflow not healthy after {timeout}s: {health}")
        time.sleep(3)

    app = Celery(broker=stack.env["AIRFLOW__CELERY__BROKER_URL"])
    try:
        while True:
            stack.check_running()
            replies = app.control.ping(timeout=2) or []
            if any(stack.queue in name for reply in replies for name in reply):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"Celery worker did not answer a ping; last lines:\n{_tail(stack.log('celery-worker'))}"
                )
            time.sleep(2)
    finally:
        app.close()


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, postgres_database):
    """Airflow 3 with CeleryExecutor on a fresh Postgres database (conftest's `postgres_database`,
    dropped after us: metadata and Celery results) and a Redis broker; torn down after."""
    if not _answers(REDIS_PORT):
        pytest.skip(f"needs Redis on {HOST}:{REDIS_PORT} (the services tests run where it answers)")
    try:
        import redis  # noqa: F401
    except ImportError:
        pytest.skip("needs the redis package (celery[redis] brings it)")

    token = uuid.uuid4().hex[:12]
    sql_conn = postgres_database
    database = sql_conn.rsplit("/", 1)[1]
    home = tmp_path_factory.mktemp("celery-airflow-home")
    lake = tmp_path_factory.mktemp("celery-lake")
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(18)
    passwords_file = home / "simple_auth_manager_passwords.json"
    passwords_file.write_text(f'{{"admin": "{password}"}}\n')
    passwords_file.chmod(0o600)

    redis_db = _redis_claim(token)
    port = _free_port()
    queue = f"reviewflow_{token}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.pop("REVIEWFLOW_NO_AIRFLOW_VARIABLES", None)  # inside Airflow, Variables may override config
    from cryptography.fernet import Fernet

    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": sql_conn,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{HOST}:{REDIS_PORT}/{redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{sql_conn}",
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CELERY__SYNC_PARALLELISM": "1",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "7200",
        # every task goes to a queue only our worker consumes
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": queue,
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "2",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords_file),
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        # the scheduler signs task tokens, the API server checks them: one shared secret
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        # log servers are skipped (--skip-serve-logs); should one start anyway, not on a taken port
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_HOST": HOST,
        "AIRFLOW__SCHEDULER__SCHEDULER_HEALTH_CHECK_SERVER_PORT": str(_free_port()),
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "60",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "60",
        "REVIEWFLOW_LAKE": str(lake),
        "REVIEWFLOW_CATALOG": "duckdb",
        "REVIEWFLOW_SQL": "duckdb",
        "REVIEWFLOW_GPU_BACKEND": "local",
        "REVIEWFLOW_START_DATE": DATES[0],
        "GX_ANALYTICS_ENABLED": "false",
    })  # fmt: skip
    stack = Stack(home, str(lake), port, database, redis_db, queue, password, env)
    try:
        # Fail at once, and say why, when the installed Celery does not fit the Celery provider.
        check = subprocess.run([sys.executable, "-c", "import airflow.providers.celery.executors.celery_executor"],
                               env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        if check.returncode:
            pytest.fail(f"the CeleryExecutor does not import with this venv's celery/provider pins:\n"
                        f"{check.stderr.strip().splitlines()[-1]}", pytrace=False)  # fmt: skip
        with stack.log("db-migrate").open("wb") as out:
            subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], cwd=PROJECT_ROOT, env=env,
                           stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=True, timeout=600)  # fmt: skip
        stack.start("api-server", ["api-server", "--host", HOST, "--port", str(port), "--workers", "1"])
        stack.start("scheduler", ["scheduler", "--skip-serve-logs"])
        stack.start("dag-processor", ["dag-processor"])
        stack.start("celery-worker", [
            "celery", "worker", "--queues", queue, "--concurrency", "2", "--skip-serve-logs",
            "--celery-hostname", f"{queue}@%h", "--without-mingle", "--without-gossip",
        ])  # fmt: skip
        _wait_healthy(stack)
        yield stack
    finally:
        try:
            stack.stop()  # before conftest drops the database
        finally:
            _redis_release(redis_db, token)


@pytest.fixture(scope="module")
def ingest_runs(celery_stack) -> dict[str, str]:
    """reviews_ingest triggered through the REST API for both generated days, run to success."""
    stack = celery_stack
    sample_data.write_landing(stack.lake, days=len(DATES), rows_per_day=ROWS_PER_DAY, start=DATES[0], seed=11,
                              dirty_share=0.05)  # fmt: skip
    api = stack.api()
    api.wait_for_dag("reviews_ingest", timeout=300)
    # Trigger while paused (a paused DAG's runs wait), then unpause so the scheduler runs them. The
    # DAG starts on DATES[0] (a manual run before its start date gets no task instances) and
    # catches up, so the scheduler finds our runs at its next dates and creates none of its own;
    # Airflow 3.3.2 then keeps retrying that date ("run already exists"), so pause again after.
    runs = {dt: api.trigger("reviews_ingest", f"{dt}T00:00:00Z") for dt in DATES}
    api.set_paused("reviews_ingest", False)
    try:
        for run_id in runs.values():
            try:
                api.wait_for_run("reviews_ingest", run_id, timeout=1200)
            except (RuntimeError, TimeoutError) as exc:
                tis = api.task_instances("reviews_ingest", run_id)
                states = [(t["task_id"], t["map_index"], t["state"]) for t in tis]
                raise AssertionError(f"{exc}; task instances {states}; logs in {LOG_DIR}") from exc
    finally:
        api.set_paused("reviews_ingest", True)
    return runs


def test_stack_binds_loopback_only(celery_stack):
    """Nothing our processes started listens beyond 127.0.0.1 (no 0.0.0.0 log or health servers)."""
    pids = _pids_in_groups({proc.pid for proc in celery_stack.procs.values()})
    listening = subprocess.run(["ss", "-Hltnp"], capture_output=True, text=True, check=True).stdout.splitlines()
    ours = []
    for line in listening:
        owners = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if owners & pids:
            ours.append(line.split()[3])  # Local Address:Port
    assert f"{HOST}:{celery_stack.port}" in ours
    assert all(address.startswith(f"{HOST}:") for address in ours), ours


def test_ingest_runs_on_celery_worker(celery_stack, ingest_runs):
    stack, api = celery_stack, celery_stack.api()
    lake = LocalLake(stack.lake)
    for dt, run_id in ingest_runs.items():
        report = read_json(lake, f"reports/ingest/dt={dt}/ingest_report.json")
        assert report["ingest_run"] == run_id
        assert report["rows_in"] == report["rows_curated"] + report["rows_quarantined"]
        assert report["rows_in"] >= ROWS_PER_DAY
        assert report["rows_quarantined"] > 0  # 5 % dirty rows of every kind
        assert lake.list(f"curated/reviews/dt={dt}/") == [f"curated/reviews/dt={dt}/part-0.parquet"]
        curated = read_parquet(lake, f"curated/reviews/dt={dt}/part-0.parquet")
        assert len(curated) == report["rows_curated"] > 0
        assert set(curated["ingest_run"]) == {run_id}

        tis = api.task_instances("reviews_ingest", run_id)
        assert {t["task_id"] for t in tis} == {"crawl", "validate", "curate", "alerts"}  # alerts: the teardown
        assert all(t["state"] == "success" for t in tis), [(t["task_id"], t["state"]) for t in tis]
        # Only our Celery worker consumes this queue, and each TI ran in a process it forked.
        assert {t["queue"] for t in tis} == {stack.queue}
        assert all(t["hostname"] and t["pid"] for t in tis)

    # The worker's own log shows it received and ran the tasks; Celery recorded each as a result.
    worker_log = stack.log("celery-worker").read_text(errors="replace")
    for run_id in ingest_runs.values():
        for task_id in ("crawl", "validate", "curate", "alerts"):
            assert re.search(rf"Executing workload in Celery: .*task_id='{task_id}'.*run_id='{re.escape(run_id)}'",
                             worker_log), f"{task_id} of {run_id} not in the worker log"  # fmt: skip
    # A task reports success to the API server just before its Celery task ends: allow a moment.
    import psycopg2

    n_tis = sum(len(api.task_instances("reviews_ingest", r)) for r in ingest_runs.values())
    deadline = time.monotonic() + 60
    with contextlib.closing(psycopg2.connect(host=HOST, port=PG_PORT, user="postgres", dbname=stack.database)) as conn:
        conn.autocommit = True
        while True:
            with conn.cursor() as cur:
                cur.execute("SELECT status, count(*) FROM celery_taskmeta GROUP BY status")
                results = dict(cur.fetchall())
            if results.get("SUCCESS", 0) >= n_tis or time.monotonic() > deadline:
                break
            time.sleep(2)
    assert results.get("SUCCESS", 0) >= n_tis, results

    # The scheduler created no runs of its own for these dates (they were triggered).
    assert {r["run_type"] for r in api.runs("reviews_ingest")} == {"manual"}


def test_bias_report_on_celery(celery_stack, ingest_runs):
    api, lake = celery_stack.api(), LocalLake(celery_stack.lake)
    dt = DATES[-1]
    run_id = api.trigger("reviews_bias_report", None, conf={"dt": dt})
    api.set_paused("reviews_bias_report", False)
    try:
        api.wait_for_run("reviews_bias_report", run_id, timeout=900)
    finally:
        api.set_paused("reviews_bias_report", True)
    report = read_json(lake, f"reports/bias/dt={dt}/bias_report.json")
    assert report["dt"] == dt
    assert report["metrics"]
    assert {m["metric"] for m in report["metrics"]} <= BIAS_METRICS
    assert {"CI", "DPL"} <= {m["metric"] for m in report["metrics"]}
    assert lake.exists(f"reports/bias/dt={dt}/bias_report.html")
    tis = api.task_instances("reviews_bias_report", run_id)
    assert tis and all(t["state"] == "success" and t["queue"] == celery_stack.queue for t in tis)


def _browser_missing() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: scripts/install_system_deps.sh installs Debian's chromium (needs root or sudo)"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    return ""


@pytest.mark.browser
@pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present")
def test_ui_shows_ingest_run(celery_stack, ingest_runs):
    """Log into the Airflow UI, find the reviewflow DAGs, open a finished ingest run: all green."""
    from playwright.sync_api import expect, sync_playwright

    stack = celery_stack
    dag_ids = sorted(d["dag_id"] for d in stack.api().get("/api/v2/dags?tags=reviewflow&limit=100")["dags"])
    assert "reviews_ingest" in dag_ids
    run_id = ingest_runs[DATES[-1]]
    tis = stack.api().task_instances("reviews_ingest", run_id)
    shot = ARTIFACTS / "airflow_ui_reviews_ingest.png"
    shot.unlink(missing_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        try:
            # The simple auth manager's login page, then back to the page asked for.
            page.goto(f"{stack.url}/dags?tags=reviewflow")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(stack.password)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("link", name="Dags", exact=True).first).to_be_visible()
            page.goto(f"{stack.url}/dags?tags=reviewflow")
            expect(page.get_by_role("heading", name=f"{len(dag_ids)} Dags", exact=True)).to_be_visible()
            for dag_id in dag_ids:
                expect(page.get_by_role("link", name=dag_id, exact=True)).to_be_visible()

            page.get_by_role("link", name="reviews_ingest", exact=True).click()
            expect(page).to_have_url(re.compile(r"/dags/reviews_ingest$"))
            page.goto(f"{stack.url}/dags/reviews_ingest/runs/{urllib.parse.quote(run_id, safe='')}")
            expect(page.get_by_role("heading", name=run_id, exact=True)).to_be_visible()
            expect(page.get_by_role("heading", name=f"{len(tis)} Task Instances", exact=True)).to_be_visible()
            for task_id in ("crawl", "validate", "curate"):
                row = page.get_by_role("row").filter(has=page.get_by_role("link", name=task_id, exact=True))
                expect(row).to_have_count(1)
                expect(row.get_by_role("cell", name="Success", exact=True)).to_be_visible()
            page.screenshot(path=str(shot), full_page=True)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "airflow_ui_failure.png"), full_page=True)
            raise
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000


def test_no_secrets_in_logs(celery_stack, ingest_runs):
    """Neither the admin password nor the keys we generated show up in any log (ours or the tasks')."""
    secret_keys = ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW__API__SECRET_KEY", "AIRFLOW__API_AUTH__JWT_SECRET")
    secrets_ = [celery_stack.password, *(celery_stack.env[k] for k in secret_keys)]
    logs = [*LOG_DIR.glob("*.log"), *(celery_stack.home / "logs").rglob("*.log")]
    assert len(logs) > len(COMPONENTS)
    for path in logs:
        text = path.read_text(errors="replace")
        leaked = [k for k, v in zip(("admin password", *secret_keys), secrets_, strict=True) if v in text]
        assert not leaked, f"{path} contains {leaked}"
