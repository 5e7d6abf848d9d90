"""reviewflow's reports inside the Airflow UI, for real: an API server, finished runs, chromium.

A module fixture runs `reviews_ingest` for two generated days, then `reviews_bias_report` and a
tiny `sentiment_training` (`airflow dags test` in fresh processes, one SQLite metadata DB in a tmp
AIRFLOW_HOME), and starts `airflow api-server` on a free 127.0.0.1 port in its own process group
(no scheduler: the runs are finished). The plugin is loaded the way Airflow loads it (plugins/).

- test_run_views_map_runs_to_dates: through HTTP with a token from /auth/token, each run's view
  names its date (read from the metadata DB: logical date, conf, XCom) and its reports.
- test_reports_in_the_ui: log in through the UI (the simple auth manager's generated admin
  password), open the finished bias run, its "reviewflow report" tab, the report (heading and a
  chart image); the training run's gate decision and model report; the nav page; the ingest run's
  GX Data Docs index listing the run's validation with the offline assets (no request leaves
  127.0.0.1); log out, and the report URL is refused. Screenshots: test-artifacts/ui_reports/.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from reviewflow import layout
from reviewflow.config import PROJECT_ROOT
from reviewflow.storage.lake import LocalLake, read_json
from tests.fresh_process import airflow_dags_test
from tools import sample_data

pytestmark = pytest.mark.slow

HOST = "127.0.0.1"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "ui_reports"
DAYS = ["2024-01-01", "2024-01-02"]
TINY_BERT = {"bert_max_train_samples": 40, "bert_max_minutes": 0.5, "bert_epochs": 1, "bert_max_length": 32}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _browser_missing() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        return f"{CHROMIUM} is missing: scripts/install_system_deps.sh installs Debian's chromium"
    if importlib.util.find_spec("playwright") is None:
        return "the playwright package is not installed"
    return ""


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


class Server:
    def __init__(self, home: Path, lake: str, port: int, env: dict, runs: dict):
        self.home, self.lake, self.port, self.env, self.runs = home, lake, port, env, runs
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def password(self) -> str:
        return json.loads((self.home / "simple_auth_manager_passwords.json.generated").read_text())["admin"]

    def token(self) -> str:
        body = json.dumps({"username": "admin", "password": self.password}).encode()
        request = urllib.request.Request(f"{self.url}/auth/token", data=body, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def start(self) -> None:
        log = (ARTIFACTS / "api-server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "api-server", "--host", HOST, "--port", str(self.port), "--workers", "1"],
            cwd=PROJECT_ROOT, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: it and its uvicorn worker, nothing else
        )  # fmt: skip
        deadline = time.monotonic() + 240
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"api-server exited {self.proc.returncode}: see {ARTIFACTS / 'api-server.log'}")
            with contextlib.suppress(OSError):
                if (
                    _get(f"{self.url}/api/v2/monitor/health")[0] == 200
                    and (self.home / "simple_auth_manager_passwords.json.generated").exists()
                ):
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the api-server did not answer within 240 s")
            time.sleep(1)

    def stop(self) -> None:
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # uvicorn workers left in the group


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    home = tmp_path_factory.mktemp("ui-airflow-home")
    lake = str(tmp_path_factory.mktemp("ui-lake"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT_ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{port}/execution/",
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(64),
        "REVIEWFLOW_LAKE": lake,
        "REVIEWFLOW_CATALOG": "duckdb",
        "REVIEWFLOW_SQL": "duckdb",
        "REVIEWFLOW_GPU_BACKEND": "local",
        "REVIEWFLOW_START_DATE": DAYS[0],
        "REVIEWFLOW_NO_AIRFLOW_VARIABLES": "1",
        "GX_ANALYTICS_ENABLED": "false",
    })  # fmt: skip
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, check=True, capture_output=True,
                   timeout=300)  # fmt: skip
    sample_data.write_landing(lake, days=len(DAYS), rows_per_day=300, start=DAYS[0], seed=5)
    runs = {}
    for dag_id, dt, conf in [("reviews_ingest", DAYS[0], None), ("reviews_ingest", DAYS[1], None),
                             ("reviews_bias_report", DAYS[1], {"dt": DAYS[1]}),
                             ("sentiment_training", DAYS[1], TINY_BERT)]:  # fmt: skip
        result = airflow_dags_test(dag_id, dt, env=env, conf=conf, timeout=600)
        (ARTIFACTS / f"{dag_id}-{dt}.log").write_text(result.output)
        assert result.ok, f"{dag_id} {dt}: {result.state}\n{result.tail()}"
        runs[(dag_id, dt)] = result.run_id
    srv = Server(home, lake, port, env, runs)
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()


def _run_url(server: Server, dag_id: str, dt: str) -> str:
    return f"{server.url}/reviewflow/runs/{dag_id}/{urllib.parse.quote(server.runs[(dag_id, dt)], safe='')}"


def test_run_views_map_runs_to_dates(server):
    token = server.token()
    status, html = _get(_run_url(server, "reviews_ingest", DAYS[0]), token)
    assert status == 200, html
    assert f"report date: {DAYS[0]}." in html and f"Accounting of {DAYS[0]}" in html
    report = read_json(LocalLake(server.lake), layout.ingest_report_key(DAYS[0]))
    assert f"Records in <strong>{report['rows_in']}</strong>" in html
    status, html = _get(_run_url(server, "reviews_bias_report", DAYS[1]), token)
    assert status == 200 and f"report date: {DAYS[1]}." in html and "open the report of 2024-01-02" in html
    status, html = _get(_run_url(server, "sentiment_training", DAYS[1]), token)
    decision = read_json(LocalLake(server.lake), layout.decision_key(server.runs[("sentiment_training", DAYS[1])]))
    assert status == 200 and decision["status"] in html and "Model reports" in html
    assert _get(_run_url(server, "sentiment_training", DAYS[1]))[0] == 401  # no token
    assert _get(f"{server.url}/reviewflow/runs/sentiment_training/no_such_run", token)[0] == 404


@pytest.mark.browser
@pytest.mark.skipif(bool(_browser_missing()), reason=_browser_missing() or "browser present")
def test_reports_in_the_ui(server):
    from playwright.sync_api import expect, sync_playwright

    requests: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        expect.set_options(timeout=60_000)
        page.on("request", lambda r: requests.append(r.url))
        try:
            page.goto(f"{server.url}/")
            page.get_by_label("Username").fill("admin")
            page.get_by_label("Password").fill(server.password)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("link", name="Dags", exact=True).first).to_be_visible()

            # the finished bias run -> its reviewflow tab -> the report: heading and a chart image
            bias_run = server.runs[("reviews_bias_report", DAYS[1])]
            page.goto(f"{server.url}/dags/reviews_bias_report/runs/{urllib.parse.quote(bias_run, safe='')}")
            page.get_by_role("link", name="reviewflow report", exact=True).click()
            frame = page.frame_locator("iframe[title='reviewflow report']")
            expect(frame.get_by_role("heading", name=f"Bias report of {DAYS[1]}")).to_be_visible()
            frame.get_by_role("link", name=f"open the report of {DAYS[1]}").click()
            expect(frame.get_by_role("heading", name="Class imbalance and bias report")).to_be_visible()
            chart = frame.locator("img[src^='data:image/png']").first
            expect(chart).to_be_visible()
            assert chart.evaluate("img => img.complete && img.naturalWidth > 100")
            page.screenshot(path=str(ARTIFACTS / "bias_report.png"))
            report_url = next(f.url for f in page.frames if "bias_report.html" in f.url)

            # the training run's gate decision, its reasons, and a model report
            train_run = server.runs[("sentiment_training", DAYS[1])]
            decision = read_json(LocalLake(server.lake), layout.decision_key(train_run))
            page.goto(f"{server.url}/dags/sentiment_training/runs/{urllib.parse.quote(train_run, safe='')}")
            page.get_by_role("link", name="reviewflow report", exact=True).click()
            frame = page.frame_locator("iframe[title='reviewflow report']")
            expect(frame.get_by_role("heading", name="Gate decision")).to_be_visible()
            expect(frame.get_by_text(decision["status"], exact=True)).to_be_visible()
            expect(frame.get_by_text(decision["reasons"][0], exact=True)).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "training_decision.png"))
            frame.get_by_role("link", name=re.compile(rf"^{decision['challenger']['model_name']} ")).click()
            expect(frame.locator("h1").first).to_be_visible()
            assert frame.locator("img[src^='data:image/png']").count() > 0
            page.screenshot(path=str(ARTIFACTS / "model_report.png"))

            # the nav page: the champion
            page.get_by_role("link", name="reviewflow", exact=True).click()
            frame = page.frame_locator("iframe[title='reviewflow']")
            expect(frame.get_by_role("heading", name="Champion", exact=True)).to_be_visible()
            champion = read_json(LocalLake(server.lake), layout.CHAMPION_KEY)
            expect(frame.get_by_text(f"{champion['model_name']} {champion['version']}").first).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "overview.png"))

            # the ingest run's Data Docs: the index lists the run's validation (needs jquery +
            # bootstrap-table from the plugin: offline, nothing from a CDN)
            ingest_run = server.runs[("reviews_ingest", DAYS[1])]
            page.goto(f"{server.url}/dags/reviews_ingest/runs/{urllib.parse.quote(ingest_run, safe='')}")
            page.get_by_role("link", name="reviewflow report", exact=True).click()
            frame = page.frame_locator("iframe[title='reviewflow report']")
            expect(frame.get_by_role("heading", name=f"Accounting of {DAYS[1]}")).to_be_visible()
            frame.get_by_role("link", name="validation").first.click()
            validations = frame.get_by_role("tabpanel", name="Validation Results")
            expect(validations.get_by_text("Showing 1 to 1 of 1 rows")).to_be_visible()  # rendered by bootstrap-table
            file_id = read_json(LocalLake(server.lake), layout.ingest_report_key(DAYS[1]))["files"][0]["file_id"]
            row = validations.get_by_role("row").filter(has_text=file_id)
            expect(row.get_by_role("link", name="reviews_contract")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "data_docs.png"))
            outside = sorted({u for u in requests if not u.startswith((server.url, "data:", "blob:", "about:"))})
            assert not outside, f"requests left {HOST}: {outside}"
            assert any("/reviewflow/assets/npm/bootstrap-table@1.19.1/" in u for u in requests)

            # log out: the report URL is refused
            page.goto(f"{server.url}/")
            page.get_by_role("button", name=re.compile("User")).click()
            page.get_by_role("menuitem", name="Logout").click()
            page.get_by_role("button", name="Confirm").click()
            expect(page.get_by_label("Username")).to_be_visible()
            response = page.goto(report_url)
            assert response is not None and response.status == 401
            expect(page.get_by_text("Not authenticated")).to_be_visible()
            assert "Class imbalance" not in page.content()
            page.screenshot(path=str(ARTIFACTS / "logged_out.png"))
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
            raise
        finally:
            browser.close()
