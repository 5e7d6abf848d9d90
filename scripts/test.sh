#!/usr/bin/env bash
# `make test` after lint: the whole pytest suite (unit, DAG integrity, e2e, aws seam on moto,
# services and browser tests when their prerequisites are there).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/env.sh
mkdir -p test-artifacts
bash scripts/install_system_deps.sh || true  # Debian chromium for the browser test; never fails the run
python -m pytest -q -p no:cacheprovider --timeout 1800 "$@"
