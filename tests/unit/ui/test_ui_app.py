"""The UI plugin's FastAPI app with its test client and real Airflow JWTs (the simple auth manager's).

Auth is not mocked: tokens are signed by the configured auth manager and checked by the core API's
own ``get_user`` / ``requires_access_dag``. The lake is a tmp folder with one date's reports.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import UTC, datetime

import jwt
import pytest

from reviewflow import layout
from reviewflow.alerts.record import Alert
from reviewflow.alerts.store import write_alerts
from reviewflow.storage.lake import LocalLake, write_json
from reviewflow.ui import app as ui_app
from reviewflow.ui import assets
from reviewflow.ui.run_dates import RunFacts

DT = "2024-01-02"
SECRET = "the-curated-rows-are-private"
HOSTILE = "<script>alert('x')</script>"
BIAS_RUN = "manual__2024-01-02T00:00:00+00:00"
TRAIN_RUN = "scheduled__2024-01-02T02:00:00+00:00"
DOCS = f"reports/quality/dt={DT}/reviews-0.csv-abc123/"
CDN_PAGE = """<html><head>
<link rel="stylesheet" href="https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css"/>
<link rel="stylesheet" href="https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css">
<script src="https://cdn.jsdelivr.net/npm/vega@5"></script>
<script src="https://code.jquery.com/jquery-3.7.1.min.js"></script>
<script src="https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js"></script>
<link rel="stylesheet" href="https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css">
<script src="https://example.org/not-ours.js"></script>
</head><body><img src="https://great-expectations-web-assets.s3.us-east-2.amazonaws.com/logo-long.png?d=1&dataContextId=abc">
<h1>Validation results</h1></body></html>"""


def build_lake(root) -> LocalLake:
    lake = LocalLake(str(root))
    lake.write_bytes(layout.curated_key(DT), SECRET.encode())  # raw data: never served
    lake.write_bytes(layout.CATALOG_KEY, SECRET.encode())
    files = [{"file": f"reviews-0.csv{HOSTILE}", "file_id": "reviews-0.csv-abc123", "status": "parsed", "rows_in": 300,
              "rows_curated": 293, "rows_quarantined": 7, "rows_duplicate": 0,
              "quarantined_by_rule": {"rating in 1..5": 4, "review text present": 3},
              "data_docs": lake.uri(DOCS + "index.html")}]  # fmt: skip
    write_json(lake, layout.ingest_report_key(DT), {
        "dt": DT, "rows_in": 300, "rows_curated": 293, "rows_quarantined": 7, "rows_duplicate": 0,
        "rows_in_unknown_files": [], "files": files, "skipped": [], "schema_drift": [
            {"file": "reviews-0.csv", "vs_contract": {"drifted": True, "extra": ["colour"]}, "vs_catalog": None}]})  # fmt: skip
    lake.write_bytes(DOCS + "index.html", CDN_PAGE.encode())
    lake.write_bytes(DOCS + "static/styles/data_docs_default_styles.css", b"body{}")
    json_key, html_key = layout.bias_report_keys(DT)
    write_json(lake, json_key, {"dt": DT, "alerts": [{"metric": "DPL"}]})
    lake.write_bytes(
        html_key, b'<html><body><h1>Bias report 2024-01-02</h1><img src="data:image/png;base64,AA=="></body></html>'
    )
    from reviewflow.training.registry import version_for

    version = version_for(DT, TRAIN_RUN)
    lake.write_bytes(layout.model_report_prefix("tfidf", version) + "report.html", b"<h1>tfidf model report</h1>")
    write_json(lake, layout.decision_key(TRAIN_RUN), {
        "status": "refused", "promote": False, "reasons": [f"fairness gate failed: {HOSTILE}", "margin not met"],
        "challenger": {"model_name": "tfidf", "version": version, "macro_f1": 0.61},
        "champion": {"model_name": "bert", "version": "20240101-aaaaaa", "macro_f1": 0.7},
        "checks": [{"check": "fairness", "passed": False, "violations": ["age_band 18-24"]}]})  # fmt: skip
    json_key, html_key = layout.drift_report_keys(DT)
    write_json(lake, json_key, {"dt": DT, "model": "tfidf:1", "current": {"rows": 293, "predicted": {"-1": 0.2, "0": 0.1, "1": 0.7}},
                                "checks": [], "alerts": [{"check": "predicted distribution", "metric": "PSI", "value": 0.31, "threshold": 0.2}]})  # fmt: skip
    lake.write_bytes(html_key, b"<h1>Drift report</h1>")
    lake.write_bytes(layout.review_queue_key(DT), b'review_id,review_text,label\n1,"two\nlines",\n2,ok,\n3,fine,\n')
    json_key, html_key = layout.insights_report_keys(DT)
    write_json(lake, json_key, {"dt": DT, "tested": 12, "skipped": 3, "alerts": []})
    lake.write_bytes(html_key, b"<h1>Product insights</h1>")
    champion = {"model_name": "bert", "version": "20240101-aaaaaa", "kind": "bert", "promoted_at": "2024-01-02T03:00:00+00:00",
                "metrics": {"test_macro_f1": 0.7}, "report_uri": lake.uri("reports/models/bert/20240101-aaaaaa/report.html"),
                "promoted_by_run": "r1", "previous": None, "data_snapshot": {"dt": "2024-01-01", "rows": 900}}  # fmt: skip
    write_json(lake, layout.CHAMPION_KEY, champion)
    write_json(lake, f"{layout.CHAMPION_HISTORY}/2024-01-02T030000-bert-20240101-aaaaaa.json", champion)
    write_alerts(lake, DT, "reviews_bias_report", [Alert(kind="bias", severity="warning", dt=DT, title=f"DPL high {HOSTILE}",
                                                         uri=lake.uri(layout.bias_report_keys(DT)[1]))])  # fmt: skip
    os.symlink("/etc/passwd", lake.path(f"reports/bias/dt={DT}/passwd.html"))
    os.symlink(lake.path(layout.curated_key(DT)), lake.path(f"reports/bias/dt={DT}/curated.html"))
    return lake


FACTS = {
    ("reviews_ingest", "ingest_run"): RunFacts("reviews_ingest", "ingest_run", logical_date=datetime(2024, 1, 2, tzinfo=UTC)),
    ("reviews_bias_report", BIAS_RUN): RunFacts("reviews_bias_report", BIAS_RUN, event_dates=(DT,), state="success"),
    ("sentiment_training", TRAIN_RUN): RunFacts("sentiment_training", TRAIN_RUN, logical_date=datetime(2024, 1, 2, tzinfo=UTC)),
    ("sentiment_batch_scoring", "score_run"): RunFacts("sentiment_batch_scoring", "score_run", chosen_dates=(DT,)),
    ("review_insights", "insights_run"): RunFacts("review_insights", "insights_run", conf={"dt": DT}),
    ("reviews_bias_report", "later_run"): RunFacts("reviews_bias_report", "later_run", conf={"dt": "2024-01-09"}),
    ("some_other_dag", "r1"): RunFacts("some_other_dag", "r1"),
}  # fmt: skip


@pytest.fixture(scope="module")
def auth(airflow_db):
    """The configured auth manager (Airflow 3's default: the simple auth manager) and token makers."""
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    manager = create_auth_manager()

    def token(role: str | None = "VIEWER", expires_in: int = 600) -> str:
        return manager.generate_jwt(SimpleAuthManagerUser(username=f"u-{role}", role=role),
                                    expiration_time_in_seconds=expires_in)  # fmt: skip

    return token


@pytest.fixture
def client(tmp_path, auth):
    from fastapi.testclient import TestClient

    lake = build_lake(tmp_path / "lake")
    app = ui_app.create_app(lake_factory=lambda: lake, facts_loader=lambda d, r: FACTS.get((d, r)))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {auth()}"
        c.lake = lake
        c.app_ = app
        yield c


def anonymous(client):
    from fastapi.testclient import TestClient

    return TestClient(client.app_)


URLS = ["/", f"/runs/reviews_bias_report/{BIAS_RUN}", f"/files/reports/bias/dt={DT}/bias_report.html",
        "/assets/npm/jquery@3.7.1/dist/jquery.min.js"]  # fmt: skip


# -- auth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", URLS)
def test_every_endpoint_needs_a_login(client, url):
    response = anonymous(client).get(url)
    assert response.status_code == 401
    assert "log in to Airflow" in response.json()["detail"]
    assert "Bias report" not in response.text
    browser = anonymous(client).get(url, headers={"Accept": "text/html"})
    assert browser.status_code == 401 and "log in to Airflow" in browser.text  # a page, not a crash


@pytest.mark.parametrize("url", URLS)
def test_a_forged_or_expired_token_is_refused(client, auth, url):
    forged = jwt.encode(
        {"sub": "admin", "role": "ADMIN", "exp": int(time.time()) + 600}, "not-the-key", algorithm="HS512"
    )
    response = anonymous(client).get(url, headers={"Authorization": f"Bearer {forged}"})
    assert response.status_code == 403, response.text
    expired = auth(expires_in=-120)
    assert anonymous(client).get(url, headers={"Authorization": f"Bearer {expired}"}).status_code == 401


def test_the_ui_cookie_is_accepted(client, auth):
    """The browser sends the `_token` cookie that Airflow's login sets (same origin as the iframe)."""
    c = anonymous(client)
    c.cookies.set("_token", auth())
    response = c.get(f"/files/reports/bias/dt={DT}/bias_report.html")
    assert response.status_code == 200 and "<h1>Bias report 2024-01-02</h1>" in response.text


def test_a_user_without_dag_permission_is_forbidden(client, auth):
    c = anonymous(client)
    c.headers["Authorization"] = f"Bearer {auth(role=None)}"
    assert c.get(f"/runs/reviews_bias_report/{BIAS_RUN}").status_code == 403
    assert c.get(f"/files/reports/bias/dt={DT}/bias_report.html").status_code == 403
    page = c.get("/")
    assert page.status_code == 200 and "Bias report" not in page.text and "20240101-aaaaaa" not in page.text


# -- what may be served --------------------------------------------------------------------------

TRAVERSALS = [
    f"reports/bias/dt={DT}/../../../curated/reviews/dt={DT}/part-0.parquet",
    f"reports/bias/%2e%2e/%2e%2e/curated/reviews/dt={DT}/part-0.parquet",
    f"reports/bias/%252e%252e/%252e%252e/curated/reviews/dt={DT}/part-0.parquet",
    "reports/%2E%2E/catalog/reviewflow.duckdb",
    "%2Fetc%2Fpasswd",
    "/etc/passwd",
    "reports/bias/..%5C..%5Ccatalog%5Creviewflow.duckdb",
    "reports\\..\\catalog\\reviewflow.duckdb",
    f"curated/reviews/dt={DT}/part-0.parquet",
    "catalog/reviewflow.duckdb",
    "models/champion.json",
    f"review_queue/dt={DT}/../../catalog/reviewflow.duckdb",
    f"reports/bias/dt={DT}/passwd.html",  # a symlink out of the lake
    f"reports/bias/dt={DT}/curated.html",  # a symlink to raw data inside the lake
    "reports/bias/dt=2024-01-02/bias_report.json%00.html",
]


def raw_get(app, path: str, token: str) -> tuple[int, bytes]:
    """One request straight into the ASGI app: the path exactly as given (no client normalises `..`)."""
    from urllib.parse import unquote

    scope = {"type": "http", "http_version": "1.1", "method": "GET", "scheme": "http", "server": ("t", 80),
             "client": ("127.0.0.1", 1), "root_path": "", "path": unquote(path), "raw_path": path.encode(),
             "query_string": b"", "headers": [(b"authorization", f"Bearer {token}".encode()), (b"host", b"t")]}  # fmt: skip
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


@pytest.mark.parametrize("key", TRAVERSALS)
def test_traversal_and_raw_data_are_refused(client, auth, key):
    status, body = raw_get(client.app_, "/files/" + key, auth())
    assert status in (400, 404), (status, body[:300])
    assert SECRET.encode() not in body and b"root:" not in body
    response = client.get("/files/" + key)  # and through an HTTP client (which may normalise the path first)
    assert response.status_code in (400, 404) and SECRET not in response.text and "root:" not in response.text


def test_refusals_say_why(client, auth):
    status, body = raw_get(client.app_, f"/files/reports/bias/dt={DT}/../../../catalog/reviewflow.duckdb", auth())
    assert status == 400 and b"'..' segment" in body
    status, body = raw_get(client.app_, "/files/catalog/reviewflow.duckdb", auth())
    assert status == 400 and b"only reports" in body
    status, body = raw_get(client.app_, f"/files/reports/bias/dt={DT}/passwd.html", auth())
    assert status == 400 and b"leaves its zone" in body


def test_a_missing_report_is_a_clear_404(client):
    response = client.get("/files/reports/bias/dt=2024-01-09/bias_report.html")
    assert response.status_code == 404
    assert response.json()["detail"].startswith("no report at reports/bias/dt=2024-01-09/bias_report.html")
    page = client.get("/runs/reviews_bias_report/later_run")
    assert page.status_code == 200 and "No report for 2024-01-09 yet" in page.text
    assert client.get("/runs/reviews_bias_report/no_such_run").status_code == 404


# -- headers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("url", [*URLS, "/files/reports/bias/dt=2024-01-09/bias_report.html", f"/files/{DOCS}index.html",
                                 f"/files/review_queue/dt={DT}/review_queue.csv", "/files/models/champion.json"])  # fmt: skip
def test_security_headers_on_every_response(client, url):
    for c in (client, anonymous(client)):
        response = c.get(url)
        csp = response.headers["Content-Security-Policy"]
        assert "frame-ancestors 'self'" in csp and "default-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        if not url.startswith("/files/reports/quality"):
            assert "script-src" not in csp  # nothing of ours or in the lake's reports runs scripts


def test_reports_are_sandboxed_and_the_queue_is_a_download(client):
    report = client.get(f"/files/reports/bias/dt={DT}/bias_report.html")
    assert report.headers["content-type"].startswith("text/html")
    assert "sandbox" in report.headers["Content-Security-Policy"]
    queue = client.get(f"/files/review_queue/dt={DT}/review_queue.csv")
    assert queue.status_code == 200 and queue.text.startswith("review_id,")
    assert queue.headers["content-disposition"] == 'attachment; filename="review_queue.csv"'
    assert client.get(f"/files/review_queue/dt={DT}/other.csv").status_code == 400


# -- views ---------------------------------------------------------------------------------------


def relative_links(html: str) -> list[str]:
    links = re.findall(r'(?:href|src)="([^"]*)"', html)
    assert all(not link.startswith(("/", "http:", "https:", "//")) for link in links if not link.startswith("data:")), (
        links
    )
    return links


def follow(client, page_url: str, link: str):
    from urllib.parse import urljoin

    return client.get(urljoin("http://testserver" + page_url, link))


def test_ingest_run_view(client):
    url = "/runs/reviews_ingest/ingest_run"
    html = client.get(url).text
    assert "Accounting of 2024-01-02" in html and "293" in html and "rating in 1..5" in html and "colour" in html
    assert HOSTILE not in html and "&lt;script&gt;" in html  # autoescaped
    docs = next(link for link in relative_links(html) if "reports/quality" in link)
    response = follow(client, url, docs)
    assert response.status_code == 200 and "Validation results" in response.text


def test_bias_run_view_links_its_report(client):
    url = f"/runs/reviews_bias_report/{BIAS_RUN}"
    html = client.get(url).text
    assert "Bias report of 2024-01-02" in html and "1 alert in this report" in html
    link = next(link for link in relative_links(html) if link.endswith("bias_report.html"))
    assert "<h1>Bias report 2024-01-02</h1>" in follow(client, url, link).text


def test_training_run_view_shows_the_decision(client):
    url = f"/runs/sentiment_training/{TRAIN_RUN}"
    html = client.get(url).text
    assert "refused" in html and "margin not met" in html and "fairness gate failed" in html
    assert HOSTILE not in html
    link = next(link for link in relative_links(html) if "reports/models/tfidf/" in link)
    assert "tfidf model report" in follow(client, url, link).text


def test_scoring_and_insights_views(client):
    url = "/runs/sentiment_batch_scoring/score_run"
    html = client.get(url).text
    assert (
        "<strong>293</strong> rows" in html and "<strong>3</strong> low-confidence reviews" in html
    )  # 3 rows, one 2-line text
    assert "predicted distribution" in html
    link = next(link for link in relative_links(html) if link.endswith("review_queue.csv"))
    assert follow(client, url, link).status_code == 200
    html = client.get("/runs/review_insights/insights_run").text
    assert "Insights of 2024-01-02" in html
    assert "keeps no reports for this DAG" in client.get("/runs/some_other_dag/r1").text


def test_overview_shows_latest_champion_history_and_alerts(client):
    html = client.get("/").text
    relative_links(html)
    assert "bert 20240101-aaaaaa" in html and "Champion history" in html
    assert "DPL high" in html and HOSTILE not in html
    assert re.search(r'href="files/reports/bias/dt=2024-01-02/bias_report.html"', html)


# -- offline Data Docs assets --------------------------------------------------------------------


def test_data_docs_point_at_the_plugins_assets(client):
    url = f"/files/{DOCS}index.html"
    response = client.get(url)
    html = response.text
    assert "script-src 'self' 'unsafe-inline'" in response.headers["Content-Security-Policy"]
    assert "connect-src 'none'" in response.headers["Content-Security-Policy"]
    for cdn in ("bootstrapcdn.com", "unpkg.com", "jsdelivr.net", "code.jquery.com", "cdnjs.cloudflare.com"):
        assert cdn not in html, cdn
    assert "https://example.org/not-ours.js" in html  # unknown: left alone (and blocked by the CSP)
    assert '<img src="static/images/logo-long.png">' in html  # GX's tracking logo: the site's own copy
    ups = "../" * 5  # files/reports/quality/dt=D/<fid>/index.html -> the app root
    assert f'href="{ups}assets/npm/bootstrap@4.3.1/dist/css/bootstrap.min.css"' in html
    assert f'src="{ups}assets/npm/vega@5/build/vega.min.js"' in html
    assert (
        f'href="{ups}assets/npm/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.css"'
        in html
    )
    if assets.installed() is None:
        pytest.skip("offline assets not fetched here (scripts/fetch_ui_assets.py)")
    for link in re.findall(r'(?:href|src)="(\.\./[^"]+)"', html):
        asset = follow(client, url, link)
        assert asset.status_code == 200, link
    css = follow(client, url, f"{ups}assets/npm/@fortawesome/fontawesome-free@6.6.0/css/all.min.css").text
    font = re.search(r"url\(\.\./webfonts/([^)]+\.woff2)\)", css).group(1)
    assert client.get(f"/assets/npm/@fortawesome/fontawesome-free@6.6.0/webfonts/{font}").status_code == 200


def test_streamed_rewrite_never_splits_a_url():
    page = CDN_PAGE.encode() * 3
    for size in (1, 7, 64, 1000):
        parts = (page[i : i + size] for i in range(0, len(page), size))
        out = b"".join(ui_app.rewritten(parts, "../", banner=False))
        assert out == assets.rewrite_cdn_urls(page, "../") and b"bootstrapcdn" not in out


@pytest.mark.parametrize("rel", ["jquery@3.7.1/../../../../app.py", "jquery@3.7.1/dist/../package.json",
                                 "jquery@3.7.1/src/jquery.js", "manifest.json", "..%2f..%2fkeys.py",
                                 "@fortawesome/fontawesome-free@6.6.0/webfonts/../../../../../assets.py"])  # fmt: skip
def test_assets_serve_only_fetched_files(client, rel):
    status, body = raw_get(client.app_, "/assets/npm/" + rel, client.headers["Authorization"].split()[1])
    assert status == 404 and b"import" not in body


def test_without_assets_reports_still_serve(client, tmp_path, monkeypatch):
    monkeypatch.setattr(assets, "VENDOR_DIR", tmp_path / "none")
    monkeypatch.setattr(assets, "MANIFEST", tmp_path / "none" / "manifest.json")
    missing = client.get("/assets/npm/jquery@3.7.1/dist/jquery.min.js")
    assert missing.status_code == 404 and "not installed" in missing.json()["detail"]
    docs = client.get(f"/files/{DOCS}index.html")
    assert docs.status_code == 200 and "Validation results" in docs.text and "not installed" in docs.text
    assert client.get(f"/files/reports/bias/dt={DT}/bias_report.html").status_code == 200
    assert "assets are not installed" in client.get("/").text


def test_data_docs_static_files_and_json(client):
    css = client.get(f"/files/{DOCS}static/styles/data_docs_default_styles.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    report = client.get(f"/files/{layout.ingest_report_key(DT)}")
    assert report.headers["content-type"] == "application/json" and json.loads(report.text)["rows_in"] == 300


def test_reports_are_served_from_s3(aws_env, auth):
    """The same app over an S3 lake (moto): the storage seam, not the local filesystem."""
    import boto3
    from fastapi.testclient import TestClient

    from reviewflow.storage.lake import S3Lake

    boto3.client("s3").create_bucket(Bucket="ui-lake")
    lake = S3Lake("s3://ui-lake/prefix")
    html_key = layout.bias_report_keys(DT)[1]
    lake.write_bytes(html_key, b"<h1>Bias report from S3</h1>")
    lake.write_bytes(layout.curated_key(DT), SECRET.encode())
    lake.write_bytes(DOCS + "index.html", CDN_PAGE.encode())
    app = ui_app.create_app(lake_factory=lambda: lake, facts_loader=lambda d, r: FACTS.get((d, r)))
    with TestClient(app) as c:
        c.headers["Authorization"] = f"Bearer {auth()}"
        assert c.get(f"/files/{html_key}").text == "<h1>Bias report from S3</h1>"
        docs = c.get(f"/files/{DOCS}index.html").text
        assert "Validation results" in docs and "bootstrapcdn" not in docs
        assert c.get("/files/reports/bias/dt=2024-01-09/bias_report.html").status_code == 404
        status, body = raw_get(app, f"/files/reports/bias/../../curated/reviews/dt={DT}/part-0.parquet", auth())
        assert status == 400 and SECRET.encode() not in body
        assert "Bias report of 2024-01-02" in c.get(f"/runs/reviews_bias_report/{BIAS_RUN}").text
