"""Fault injection for crash tests: ``REVIEWFLOW_CRASH_AT`` kills the process (SIGKILL) at a point.

Points: ``crawl`` (after the first raw copy), ``validate`` (after a file's quarantine rows are
written), and ``write:<key prefix>`` (any lake write under that prefix, after the temp file is
written and before it is renamed into place). Unset in production: the check is one env lookup.
"""

from __future__ import annotations

import os
import signal


def maybe_crash(point: str) -> None:
    wanted = os.environ.get("REVIEWFLOW_CRASH_AT")
    if not wanted:
        return
    if wanted == point or (wanted.startswith("write:") and point.startswith("write:") and point.startswith(wanted)):
        os.kill(os.getpid(), signal.SIGKILL)
