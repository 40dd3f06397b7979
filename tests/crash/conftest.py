"""Helpers for the crash tests: worker processes started from the repository root."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start_worker(log: Path, *args: str) -> subprocess.Popen[bytes]:
    """``python -m tests.crash.workers ARGS`` from the repository root, stderr to ``log``."""
    with log.open("ab") as stderr:
        return subprocess.Popen([sys.executable, "-m", "tests.crash.workers", *args], cwd=ROOT,
                                stderr=stderr)


def worker_log(log: Path) -> str:
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""
