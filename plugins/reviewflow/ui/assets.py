"""Offline copies of the JavaScript/CSS that GX Data Docs pages load from public CDNs.

GX 1.24's Data Docs templates reference bootstrap, bootstrap-table, jquery, popper, vega (+ vega-lite,
vega-embed), bootstrap-datepicker, bootstrap-dark and font-awesome on unpkg / jsdelivr / cdnjs /
bootstrapcdn / code.jquery.com. ``scripts/fetch_ui_assets.py`` fetches the npm packages below at
INSTALL time (``npm pack``, the npm registry) into ``VENDOR_DIR`` (git-ignored); nothing is fetched
at run time. ``rewrite_cdn_urls`` points a served Data Docs page at the plugin's asset route instead.

Pure data and regexes: importing this module is cheap (the plugin entry and the fetch script do).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

VENDOR_DIR = Path(__file__).with_name("static") / "vendor"  # git-ignored; filled by scripts/fetch_ui_assets.py
MANIFEST = VENDOR_DIR / "manifest.json"  # written last by the fetch: {spec: {"version": ..., "files": [...]}}
ROUTE = "assets/npm"  # under the plugin's url_prefix: assets/npm/<spec>/<path>

# npm spec -> the files (or folders, ending in "/") of the package that the pages use.
PACKAGES: dict[str, tuple[str, ...]] = {
    "bootstrap@4.3.1": ("dist/css/bootstrap.min.css", "dist/js/bootstrap.min.js"),
    "bootstrap-table@1.19.1": (
        "dist/bootstrap-table.min.css",
        "dist/bootstrap-table.min.js",
        "dist/extensions/filter-control/",
    ),
    "bootstrap-datepicker@1.9.0": ("dist/css/bootstrap-datepicker.min.css", "dist/js/bootstrap-datepicker.min.js"),
    "@forevolve/bootstrap-dark@1.1.0": ("dist/css/bootstrap-prefers-dark.css",),
    "jquery@3.7.1": ("dist/jquery.min.js",),
    "popper.js@1.12.9": ("dist/umd/popper.min.js",),
    "@fortawesome/fontawesome-free@6.6.0": ("css/all.min.css", "webfonts/"),
    "vega@5": ("build/vega.min.js",),
    "vega-lite@5": ("build/vega-lite.min.js",),
    "vega-embed@6": ("build/vega-embed.min.js",),
}

# A CDN version the templates name that one of PACKAGES serves (same files in a patch release).
ALIASES = {"bootstrap-table@1.19.0": "bootstrap-table@1.19.1"}
# jsdelivr's file for a bare ``/npm/<pkg>@<ver>`` URL (the package's "jsdelivr" field).
DEFAULT_FILES = {
    "vega": "build/vega.min.js",
    "vega-lite": "build/vega-lite.min.js",
    "vega-embed": "build/vega-embed.min.js",
}
# cdnjs library -> (npm package, folder of the package that cdnjs's paths start in)
CDNJS = {
    "popper.js": ("popper.js", "dist/"),
    "bootstrap-datepicker": ("bootstrap-datepicker", "dist/"),
    "font-awesome": ("@fortawesome/fontawesome-free", ""),
}

_PATH = r"[^\"'\s?#<>]+"
_PKG = r"(?:@[A-Za-z0-9._-]+/)?[A-Za-z0-9._-]+"
_VER = r"[0-9][A-Za-z0-9.+-]*"
_CDN = re.compile(
    rb"https://(?:"
    + rf"unpkg\.com/(?P<u_pkg>{_PKG})@(?P<u_ver>{_VER})/(?P<u_path>{_PATH})".encode()
    + rb"|"
    + rf"cdn\.jsdelivr\.net/npm/(?P<j_pkg>{_PKG})@(?P<j_ver>{_VER})(?:/(?P<j_path>{_PATH}))?".encode()
    + rb"|"
    + rf"(?:maxcdn|stackpath)\.bootstrapcdn\.com/bootstrap/(?P<b_ver>{_VER})/(?P<b_path>{_PATH})".encode()
    + rb"|"
    + rb"code\.jquery\.com/jquery-(?P<q_ver>[0-9.]+?)(?:\.min)?\.js"
    + rb"|"
    + rf"cdnjs\.cloudflare\.com/ajax/libs/(?P<c_lib>[A-Za-z0-9._-]+)/(?P<c_ver>{_VER})/(?P<c_path>{_PATH})".encode()
    + rb")"
)


def local_asset(url: str) -> str | None:
    """``<spec>/<path>`` (relative to ``ROUTE``) that serves a CDN URL, or None when we have no copy of it."""
    match = _CDN.fullmatch(url.encode())
    return _target(match) if match else None


def _target(m: re.Match) -> str | None:
    g = {k: (v.decode() if v is not None else None) for k, v in m.groupdict().items()}
    if g["u_pkg"]:
        spec, path = f"{g['u_pkg']}@{g['u_ver']}", g["u_path"]
    elif g["j_pkg"]:
        spec, path = f"{g['j_pkg']}@{g['j_ver']}", g["j_path"] or DEFAULT_FILES.get(g["j_pkg"])
    elif g["b_ver"]:
        spec, path = f"bootstrap@{g['b_ver']}", f"dist/{g['b_path']}"
    elif g["q_ver"]:
        spec, path = f"jquery@{g['q_ver']}", "dist/jquery.min.js"
    else:
        if g["c_lib"] not in CDNJS:
            return None
        package, folder = CDNJS[g["c_lib"]]
        spec, path = f"{package}@{g['c_ver']}", folder + g["c_path"]
    spec = ALIASES.get(spec, spec)
    if spec not in PACKAGES or not path or not _covered(spec, path):
        return None
    return f"{spec}/{path}"


def _covered(spec: str, path: str) -> bool:
    return any(path == f or (f.endswith("/") and path.startswith(f)) for f in PACKAGES[spec])


# GX's logo, fetched from its S3 bucket with the data context id in the query (a tracking pixel);
# every Data Docs site holds the same images in its own static/images/.
_GX_WEB = re.compile(
    rb"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/(?P<name>[A-Za-z0-9_-]+\.(?:png|svg|gif))(?:\?[^\"'\s<>]*)?"
)


def rewrite_cdn_urls(html: bytes, ups: str, docs_root: str | None = None) -> bytes:
    """``html`` with every CDN URL we hold a copy of pointing at ``<ups>assets/npm/...`` (a relative href).

    ``ups`` is the ``../`` path from the page to the plugin's root; ``docs_root`` the one to the Data
    Docs site's root (GX's web-asset images then point at the site's own ``static/images/``). Works
    on any byte slice that does not split a URL (the streaming caller cuts at quotes)."""

    def swap(m: re.Match) -> bytes:
        target = _target(m)
        return (ups + ROUTE + "/" + target).encode() if target else m.group(0)

    html = _CDN.sub(swap, html)
    if docs_root is not None:
        html = _GX_WEB.sub(lambda m: docs_root.encode() + b"static/images/" + m.group("name"), html)
    return html


def installed() -> dict | None:
    """The fetch's manifest when the assets are installed, else None."""
    try:
        return json.loads(MANIFEST.read_text())
    except (OSError, ValueError):
        return None


def asset_path(rel: str) -> Path | None:
    """The installed file for ``<spec>/<path>``, or None (not a file we fetched, or not installed)."""
    parts = rel.split("/")
    if any(p in ("", ".", "..") or "\\" in p or "\x00" in p for p in parts):
        return None
    for spec in PACKAGES:
        if rel.startswith(spec + "/") and _covered(spec, rel[len(spec) + 1 :]):
            path = (VENDOR_DIR / rel).resolve()
            if not path.is_relative_to(VENDOR_DIR.resolve()) or not path.is_file():
                return None  # a symlink out of the vendor folder, or not fetched
            return path
    return None
