"""Fetch the offline Data Docs assets (plugins/reviewflow/ui/assets.py: PACKAGES) from the npm registry.

Run at install time (the Makefile's venv step; by hand: `.venv/bin/python scripts/fetch_ui_assets.py`).
`npm pack <spec>` downloads each package tarball through npm's own client (its registry and proxy
settings); only the files the Data Docs pages use are kept, in plugins/reviewflow/ui/static/vendor/
(git-ignored), with a manifest (resolved version, sha384 per file) written last. Already complete:
nothing is downloaded again (`--force` refetches). Never runs at Airflow run time; when it fails the
plugin still serves every report and says the Data Docs assets are missing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from reviewflow.ui.assets import MANIFEST, PACKAGES, VENDOR_DIR  # noqa: E402


def _keep(name: str, wanted: tuple[str, ...]) -> bool:
    return any(name == w or (w.endswith("/") and name.startswith(w)) for w in wanted)


def fetch(spec: str, wanted: tuple[str, ...], work: Path) -> dict:
    out = subprocess.run(
        ["npm", "pack", spec, "--json", "--silent", "--pack-destination", str(work)],
        capture_output=True, text=True, timeout=300, cwd=work,
    )  # fmt: skip
    if out.returncode:
        raise RuntimeError(f"npm pack {spec} failed: {(out.stderr or out.stdout).strip()[-500:]}")
    info = json.loads(out.stdout)[0]
    target = VENDOR_DIR / spec
    staging = VENDOR_DIR / f".{spec.replace('/', '_')}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    files = {}
    with tarfile.open(work / info["filename"]) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("package/")
            if not member.isfile() or ".." in name.split("/") or not _keep(name, wanted):
                continue  # regular files only: no links, nothing outside the package
            data = tar.extractfile(member).read()
            dest = staging / name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            files[name] = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    missing = [w for w in wanted if not any(_keep(f, (w,)) for f in files)]
    if missing:
        raise RuntimeError(f"{spec} {info['version']} has no {', '.join(missing)}")
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(target)
    return {"version": info["version"], "integrity": info.get("integrity"), "files": files}


def main(argv: list[str]) -> int:
    force = "--force" in argv
    if MANIFEST.exists() and not force:
        try:
            if set(json.loads(MANIFEST.read_text())) == set(PACKAGES):
                print(f"UI assets already in {VENDOR_DIR}")
                return 0
        except ValueError:
            pass
    if not shutil.which("npm"):
        print("fetch_ui_assets: npm not found; Data Docs will render without styles/scripts offline", file=sys.stderr)
        return 1
    VENDOR_DIR.mkdir(parents=True, exist_ok=True)
    MANIFEST.unlink(missing_ok=True)
    manifest = {}
    with tempfile.TemporaryDirectory(prefix="reviewflow-npm-") as tmp:
        for spec, wanted in PACKAGES.items():
            try:
                manifest[spec] = fetch(spec, wanted, Path(tmp))
            except (RuntimeError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
                print(f"fetch_ui_assets: {exc}", file=sys.stderr)
                return 1
            print(f"  {spec} -> {manifest[spec]['version']} ({len(manifest[spec]['files'])} files)")
    MANIFEST.write_text(json.dumps(manifest, indent=2, sort_keys=True))
    print(f"UI assets in {VENDOR_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
