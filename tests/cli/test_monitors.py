"""``shipyard monitors ...`` in local mode: create, run, list, show (with the report) and
alerts; errors as one line naming the field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import shipyard as sy
from shipyard import (  # noqa: F401  (what the commands call: a missing one fails here)
    create_monitor,
    get_monitor,
    list_alerts,
    list_monitors,
)
from shipyard.sdk import session
from tests.cli.conftest import Cli
from tests.contract.test_monitoring import _log


def test_create_run_show_and_alerts(cli: Cli, home: Path, tmp_path: Path) -> None:
    settings = sy.init()
    sy.create_endpoint("leads")
    session.reset()
    rng = np.random.default_rng(0)
    pd.DataFrame({"age": rng.normal(40, 10, 2000), "plan": rng.choice(["free", "pro"], 2000)}
                 ).to_parquet(tmp_path / "train.parquet")
    _log(Path(settings.artifacts), settings.project, "leads", shift=0.5)

    created = cli("monitors", "create", "leads", str(tmp_path / "train.parquet"),
                  "--interval", "30m", "--alert", "log", "--alert-after", "1/2")
    assert created.exit_code == 0, created.stderr
    assert "created monitor leads-monitor on endpoint leads (2 features" in created.stdout
    listed = cli("--output", "json", "monitors", "list")
    assert [(m["name"], m["interval_seconds"]) for m in listed.json()] == \
        [("leads-monitor", 1800)]
    ran = cli("monitors", "run", "leads-monitor")
    assert ran.exit_code == 0, ran.stderr
    assert "DRIFTED" in ran.stdout and "breaches: skew" in ran.stdout
    shown = cli("monitors", "show", "leads-monitor", "--report", str(tmp_path / "r.html"))
    assert shown.exit_code == 0, shown.stderr
    assert "1 of 2 windows" in shown.stdout and (tmp_path / "r.html").stat().st_size > 1000
    alerts = cli("--output", "json", "monitors", "alerts", "--state", "open")
    assert [(a["kind"], a["monitor"]) for a in alerts.json()] == [("skew", "leads-monitor")]

    cli("monitors", "create", "nope", str(tmp_path / "train.parquet")
        ).assert_one_error_line("endpoint", "nope")
    cli("monitors", "create", "leads", str(tmp_path / "train.parquet"), "--name", "m2",
        "--interval", "soon").assert_one_error_line("interval")

    paused = cli("monitors", "pause", "leads-monitor")
    assert paused.exit_code == 0, paused.stderr
    assert paused.stdout.strip() == "leads-monitor is paused"
    assert [m["state"] for m in cli("--output", "json", "monitors", "list").json()] == \
        ["paused"]
    resumed = cli("monitors", "resume", "leads-monitor")
    assert resumed.exit_code == 0, resumed.stderr
    assert resumed.stdout.startswith("leads-monitor is active; next run at ")
    cli("monitors", "pause", "nope").assert_one_error_line("nope")
