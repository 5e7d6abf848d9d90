"""The FastAPI app the API server mounts at ``/reviewflow``: lake reports behind Airflow's own login.

Routes (relative to the mount; every one needs an authenticated Airflow user):
    GET /                           the overview (nav view "reviewflow")
    GET /runs/{dag_id}/{run_id}     a DAG run's reports (dag_run view "reviewflow report")
    GET /files/{key}                one report (or review-queue CSV) from the lake
    GET /assets/npm/{spec}/{path}   the offline Data Docs assets (fetched at install time)

Auth is the core API's: ``airflow.api_fastapi.core_api.security.get_user`` (``GetUserDep``) reads
the JWT from ``Authorization: Bearer`` or, in the browser, the ``_token`` cookie the UI's login sets
(same origin as the iframe), and the auth manager checks it (401 without a token or when it
expired, 403 for a bad one). Runs are authorised with ``requires_access_dag("GET", RUN)`` on the
path's ``dag_id``; a report file with the auth manager's ``is_authorized_dag`` on the DAG that
writes that zone (``keys.ZONE_DAGS``).

Heavy imports (fastapi, the core API's security module) happen in ``create_app``: Airflow's plugin
manager imports every ``.py`` under plugins/, in every Airflow process.
"""

import functools
from collections.abc import Callable, Iterator
from typing import Any

from reviewflow.ui import assets, keys
from reviewflow.ui.views import APP_NAME, URL_PREFIX

CHUNK = 1 << 16
MAX_CARRY = 1 << 20
# Pages of ours and reviewflow's reports: inline CSS and data: images, no scripts at all.
CSP_PAGE = ("default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; font-src 'self' data:; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'self'")  # fmt: skip
CSP_REPORT = CSP_PAGE + "; sandbox"  # a lake report runs nothing, and is its own (opaque) origin
# GX Data Docs need their inline scripts (the index table, vega specs) and vega's eval; every
# asset comes from this origin (the CDN URLs are rewritten); no fetch, frame, form or plugin.
CSP_DATA_DOCS = ("default-src 'none'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
                 "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
                 "connect-src 'none'; frame-src 'none'; object-src 'none'; base-uri 'self'; form-action 'none'; "
                 "frame-ancestors 'self'")  # fmt: skip
CSP_DATA = "default-src 'none'; frame-ancestors 'self'; sandbox"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8", ".json": "application/json", ".jsonl": "application/x-ndjson",
    ".csv": "text/csv; charset=utf-8", ".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8",
    ".png": "image/png", ".gif": "image/gif", ".svg": "image/svg+xml", ".ico": "image/x-icon",
    ".woff2": "font/woff2", ".woff": "font/woff", ".ttf": "font/ttf", ".otf": "font/otf",
}  # fmt: skip
MISSING_ASSETS = (
    "The offline Data Docs assets are not installed (scripts/fetch_ui_assets.py fetches them from the npm "
    "registry; `make venv` runs it): GX Data Docs pages render without their styles and scripts."
)
_BANNER = (
    '<div id="reviewflow-assets-missing" style="position:fixed;top:0;left:0;right:0;z-index:9999;background:#fff4e5;'
    f'border-bottom:2px solid #e67e22;padding:.4rem 1rem;font-family:sans-serif">{MISSING_ASSETS}</div>'
).encode()


def default_lake():
    from reviewflow.config import get_settings

    return _lake_for(get_settings().lake)


@functools.cache
def _lake_for(root: str):
    from reviewflow.storage.lake import get_lake

    return get_lake(root)


def chunks(lake, key: str) -> Iterator[bytes]:
    """The object's bytes in chunks, through the lake interface (S3: downloaded to a temp file first)."""
    with lake.local_path(key) as path, open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def rewritten(parts: Iterator[bytes], ups: str, banner: bool, docs_root: str | None = None) -> Iterator[bytes]:
    """A Data Docs page, streamed, its CDN URLs pointed at the plugin's assets. Cut only after a quote
    (URLs sit inside quoted attributes, so none is split). ``banner``: end the page with a notice that
    the assets are missing (content after ``</html>`` lands in the body; the notice is fixed on top)."""
    carry = b""
    for part in parts:
        buf = carry + part
        cut = max(buf.rfind(b'"'), buf.rfind(b"'"))
        if cut < 0 and len(buf) < MAX_CARRY:
            carry = buf
            continue
        cut = cut if cut >= 0 else len(buf) - 1
        out, carry = buf[: cut + 1], buf[cut + 1 :]
        yield assets.rewrite_cdn_urls(out, ups, docs_root)
    if carry:
        yield assets.rewrite_cdn_urls(carry, ups, docs_root)
    if banner:
        yield _BANNER


def create_app(lake_factory: Callable[[], Any] = default_lake, facts_loader: Callable | None = None):
    """The app; ``lake_factory`` and ``facts_loader`` (dag_id, run_id -> RunFacts | None) for tests."""
    import asyncio
    from typing import Annotated

    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
    from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity, DagDetails
    from airflow.api_fastapi.core_api.security import get_user, requires_access_dag
    from fastapi import Depends, FastAPI, HTTPException, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, StreamingResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from reviewflow.ui import pages
    from reviewflow.ui.run_dates import load_facts

    facts_loader = facts_loader or load_facts
    User = Annotated[BaseUser, Depends(get_user)]
    app = FastAPI(title="reviewflow reports", docs_url=None, redoc_url=None, openapi_url=None)

    def can_read(user: BaseUser, dag_id: str) -> bool:
        details = DagDetails(id=dag_id)
        return get_auth_manager().is_authorized_dag(
            method="GET", access_entity=DagAccessEntity.RUN, details=details, user=user
        )

    def readable(user: BaseUser) -> set[str]:
        return {d for d in pages.REPORTING_DAGS if can_read(user, d)}

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", CSP_PAGE)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    def wants_html(request: Request) -> bool:
        return "text/html" in request.headers.get("accept", "")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code in (401, 403) and message in ("Not authenticated", "Token Expired", "Invalid JWT token"):
            message += ": log in to Airflow (the reviewflow views use Airflow's login)"
        if wants_html(request):
            page = pages.error_page(exc.status_code, message, root=_root_of(request))
            return HTMLResponse(page.html, status_code=exc.status_code, headers=exc.headers)
        return JSONResponse({"detail": message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return JSONResponse({"detail": f"bad request: {exc.errors()}"}, status_code=400)

    @app.get("/", response_class=HTMLResponse)
    async def overview(user: User):
        names = await asyncio.to_thread(readable, user)
        page = await asyncio.to_thread(pages.overview_page, lake_factory(), names)
        return HTMLResponse(page.html, page.status)

    @app.get("/runs/{dag_id}/{run_id}", response_class=HTMLResponse,
             dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN))])  # fmt: skip
    async def run_view(dag_id: str, run_id: str):
        facts = await asyncio.to_thread(facts_loader, dag_id, run_id)
        if facts is None:
            raise HTTPException(404, f"no run {run_id!r} of DAG {dag_id!r} in Airflow's metadata DB")
        page = await asyncio.to_thread(pages.run_page, lake_factory(), facts)
        return HTMLResponse(page.html, page.status)

    @app.get("/files/{key:path}")
    async def report_file(key: str, user: User):
        try:
            key = keys.safe_key(key)
        except keys.RefusedKey as exc:
            raise HTTPException(400, f"refused: {exc}") from exc
        owner = keys.owning_dag(key)
        allowed = (
            await asyncio.to_thread(can_read, user, owner) if owner else bool(await asyncio.to_thread(readable, user))
        )
        if not allowed:
            raise HTTPException(403, f"you may not read the reports of {owner or 'any reviewflow DAG'}")
        lake = lake_factory()

        def check() -> str | None:
            if not keys.inside_zone(lake, key):
                return "refused"
            return "ok" if lake.exists(key) else None

        found = await asyncio.to_thread(check)
        if found == "refused":
            raise HTTPException(400, "refused: the report path leaves its zone of the lake (a link)")
        if found is None:
            raise HTTPException(404, f"no report at {key}: the run that writes it has not run for that date, or failed")
        suffix = "." + key.rsplit(".", 1)[-1].lower() if "." in key.rsplit("/", 1)[-1] else ""
        media = CONTENT_TYPES.get(suffix, "application/octet-stream")
        headers = {"Content-Security-Policy": CSP_DATA}
        body = chunks(lake, key)
        if suffix == ".html" and keys.zone_of(key) == keys.layout.QUALITY_REPORTS:
            headers["Content-Security-Policy"] = CSP_DATA_DOCS
            docs_root = "../" * (key.count("/") - keys.DOCS_SITE_DEPTH)  # reports/quality/dt=D/<file_id>/
            body = rewritten(body, keys.ups(key), banner=assets.installed() is None, docs_root=docs_root)
        elif suffix == ".html":
            headers["Content-Security-Policy"] = CSP_REPORT
        elif keys.zone_of(key) == keys.layout.QUALITY_REPORTS and suffix in (
            ".css",
            ".js",
            ".png",
            ".gif",
            ".svg",
            ".ico",
            ".otf",
            ".woff",
            ".woff2",
            ".ttf",
        ):
            headers["Content-Security-Policy"] = CSP_DATA_DOCS  # Data Docs' own static files
        if suffix == ".csv" or media == "application/octet-stream":
            headers["Content-Disposition"] = f'attachment; filename="{key.rsplit("/", 1)[-1]}"'
        return StreamingResponse(body, media_type=media, headers=headers)  # a sync iterator: read in a thread

    @app.get("/assets/npm/{rel:path}")
    async def asset(rel: str, user: User):
        path = await asyncio.to_thread(assets.asset_path, rel)
        if path is None:
            if await asyncio.to_thread(assets.installed) is None:
                raise HTTPException(404, MISSING_ASSETS)
            raise HTTPException(404, f"no offline asset {rel}")
        suffix = path.suffix.lower()
        return FileResponse(path, media_type=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                            headers={"Cache-Control": "private, max-age=86400"})  # fmt: skip

    @app.get("/runs/{dag_id}", include_in_schema=False)
    async def no_run(dag_id: str, user: User):
        raise HTTPException(404, "open a DAG run: /runs/<dag_id>/<run_id>")

    return app


def _root_of(request) -> str:
    """``../`` from the requested page back to the app root (for the error page's link)."""
    path = request.scope.get("path", "/")
    root_path = request.scope.get("root_path", "")
    inner = path[len(root_path) :] if root_path and path.startswith(root_path) else path
    return "../" * max(inner.count("/") - 1, 0)


@functools.cache
def app_entry() -> dict:
    """The ``fastapi_apps`` entry of the plugin (built once, in the API server)."""
    return {"app": create_app(), "url_prefix": URL_PREFIX, "name": APP_NAME}
