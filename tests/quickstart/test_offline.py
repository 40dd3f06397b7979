"""The quickstart needs no network: it completes, closed loop included, in a network
namespace with no interfaces."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.quickstart.conftest import ROWS


def _can_isolate() -> bool:
    unshare = shutil.which("unshare")
    if unshare is None:
        return False
    probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_isolate(), reason="needs `unshare -n` (root or user namespaces)")
def test_quickstart_runs_without_any_network(home: Path) -> None:
    done = subprocess.run(
        ["unshare", "-n", sys.executable, "-m", "shipyard.cli.main", "quickstart",
         "--home", str(home), "--rows", str(ROWS)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 ran, 0 cached" in done.stdout
    assert "promoted it to production as 1.0.0" in done.stdout
    # The closed loop too: retrained on the alert, the canary judged, all in process.
    assert "-> trigger lead-scoring-endpoint-retrain -> pipeline run" in done.stdout
    assert "production is lead-scoring:" in done.stdout
