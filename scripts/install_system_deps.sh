#!/usr/bin/env bash
# System packages the optional tests use: Debian's `chromium` for the Playwright browser test
# (we never let Playwright download a browser). Installs only what is missing, quietly, and only
# where apt-get is usable (as root, or through password-less sudo). It never fails the build: when
# it cannot install, it says why and the browser test skips.
set -uo pipefail

CHROMIUM=/usr/bin/chromium

if [ -x "$CHROMIUM" ]; then
  exit 0
fi
if [ "${REVIEWFLOW_SKIP_SYSTEM_DEPS:-0}" = "1" ]; then
  echo "install_system_deps: REVIEWFLOW_SKIP_SYSTEM_DEPS=1, not installing chromium (browser tests will skip)"
  exit 0
fi
if ! command -v apt-get > /dev/null 2>&1; then
  echo "install_system_deps: no apt-get here, not installing chromium (browser tests will skip)"
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  SUDO=()
elif command -v sudo > /dev/null 2>&1 && sudo -n true > /dev/null 2>&1; then
  SUDO=(sudo -n)
else
  echo "install_system_deps: not root and no password-less sudo, not installing chromium (browser tests will skip)"
  exit 0
fi

echo "install_system_deps: installing Debian chromium (apt-get) ..."
log="$(mktemp)"
export DEBIAN_FRONTEND=noninteractive
if "${SUDO[@]}" apt-get update -qq > "$log" 2>&1 \
   && "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation >> "$log" 2>&1 \
   && [ -x "$CHROMIUM" ]; then
  echo "install_system_deps: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
else
  echo "install_system_deps: could not install chromium (browser tests will skip); last apt-get lines:"
  tail -5 "$log" | sed 's/^/  /'
fi
rm -f "$log"
exit 0
