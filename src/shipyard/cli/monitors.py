"""``shipyard monitors ...``: monitors on endpoints, their runs and alerts."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current
from shipyard.sdk.monitoring import Monitor

app = typer.Typer(help="Monitors: skew, drift and objectives on an endpoint's request log; "
                       "their runs and alerts.", no_args_is_help=True)


def _score(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else "-"


@app.command("list")
@command
def list_(
    endpoint: Annotated[str | None, typer.Option("--endpoint", help="Only this endpoint's")]
    = None,
) -> None:
    """List the project's monitors."""
    configure()
    found = sy.list_monitors(endpoint)
    if current().json:
        output.print_json([m.state for m in found])
        return
    output.show(output.table(None, ["monitor", "endpoint", "state", "every (s)", "window (s)",
                                    "features", "next run"], [
        [m.name, m.endpoint, m.state.state, m.state.interval_seconds,
         m.config.get("window_seconds"), len(m.features),
         "-" if m.paused else m.next_run_at] for m in found]))
    if not found:
        output.note("no monitors: shipyard monitors create ENDPOINT BASELINE creates one")


@app.command("create")
@command
def create(
    endpoint: Annotated[str, typer.Argument(help="The endpoint whose request log to watch")],
    baseline: Annotated[Path, typer.Argument(help="The training data: a Parquet or CSV file "
                                                  "or folder (profiled here)")],
    name: Annotated[str | None, typer.Option("--name", help="Default: ENDPOINT-monitor")]
    = None,
    interval: Annotated[str, typer.Option("--interval", help="How often: 30m, 1h, 1d")] = "1h",
    window: Annotated[str | None, typer.Option("--window", help="How much log a run "
                                                                "judges (the interval)")]
    = None,
    sampling_rate: Annotated[float, typer.Option("--sampling-rate", min=0.0, max=1.0)] = 1.0,
    threshold: Annotated[float | None, typer.Option(
        "--threshold", help="A fixed threshold for every feature (Vertex style); default: "
                            "the calibrated rule")] = None,
    alert: Annotated[list[str] | None, typer.Option(
        "--alert", help="log, event, webhook:URL or email:ADDRESS (repeat)")] = None,
    alert_after: Annotated[str | None, typer.Option(
        "--alert-after", help="K/N: alert once K of the last N windows breach")] = None,
    categorical: Annotated[list[str] | None, typer.Option(
        "--categorical", help="A numeric column to treat as categorical (repeat)")] = None,
) -> None:
    """Create a monitor: skew against BASELINE and drift between windows."""
    after = None
    if alert_after is not None:
        k, _, n = alert_after.partition("/")
        if not (k.isdigit() and n.isdigit()):
            raise typer.BadParameter("K/N, such as 2/3", param_hint="--alert-after")
        after = (int(k), int(n))
    configure()
    monitor = sy.create_monitor(endpoint, str(baseline), name=name, interval=interval,
                                window=window, sampling_rate=sampling_rate,
                                thresholds=threshold, alert=alert, alert_after=after,
                                categorical_features=categorical)
    if current().json:
        output.print_json(monitor.state)
    else:
        output.show(f"created monitor {monitor.name} on endpoint {monitor.endpoint} "
                    f"({len(monitor.features)} features, first run at "
                    f"{output.local_time(monitor.next_run_at)})")


@app.command("pause")
@command
def pause(name: Annotated[str, typer.Argument(help="Monitor name")]) -> None:
    """Stop a monitor's scheduled runs (run still judges a window on demand)."""
    configure()
    _show_state(sy.get_monitor(name).pause())


@app.command("resume")
@command
def resume(name: Annotated[str, typer.Argument(help="Monitor name")]) -> None:
    """Start a paused monitor's scheduled runs again, from the next window (windows that
    ended while it was paused are not judged)."""
    configure()
    _show_state(sy.get_monitor(name).resume())


def _show_state(monitor: Monitor) -> None:
    if current().json:
        output.print_json(monitor.state)
        return
    if monitor.paused:
        output.show(f"{monitor.name} is paused")
    else:
        output.show(f"{monitor.name} is active; next run at "
                    f"{monitor.next_run_at:%Y-%m-%d %H:%M} UTC")


@app.command("run")
@command
def run(name: Annotated[str, typer.Argument(help="Monitor name")]) -> None:
    """Judge the window ending now, and show what it found."""
    configure()
    result = sy.get_monitor(name).run_now()
    if current().json:
        output.print_json(result)
        return
    _show_run(result.result, result.state, result.error)


def _show_run(result: dict[str, Any], state: str, error: str | None) -> None:
    features: dict[str, Any] = result.get("features") or {}
    output.show(output.table(
        None, ["feature", "metric", "vs baseline", "threshold", "skew", "drift"],
        [[name, f.get("metric") or "-", _score(f.get("drift_score")),
          _score(f.get("threshold")), "DRIFTED" if f.get("drifted") else "ok",
          "-" if not f.get("drift") else "DRIFTED" if f["drift"].get("drifted") else "ok"]
         for name, f in features.items()]))
    breaches = result.get("breaches") or []
    output.show(f"{state}: {result.get('rows', 0)} rows; breaches: "
                f"{', '.join(map(str, breaches)) if breaches else 'none'}"
                + (f" ({error})" if error else ""))
    for finding in result.get("findings") or []:
        output.note(str(finding))


@app.command("show")
@command
def show(
    name: Annotated[str, typer.Argument(help="Monitor name")],
    runs: Annotated[int, typer.Option("--runs", min=1, max=1000, help="Runs listed")] = 10,
    report: Annotated[Path | None, typer.Option("--report", help="Also write the HTML "
                                                                 "report here")] = None,
) -> None:
    """A monitor's configuration and its newest runs."""
    configure()
    monitor = sy.get_monitor(name)
    history = monitor.history(runs)
    if report is not None:
        monitor.report(report, limit=max(runs, 100))
    if current().json:
        output.print_json({"monitor": monitor.state, "runs": history})
        return
    output.show(output.key_values(f"monitor {monitor.name}", {
        "endpoint": monitor.endpoint, "features": ", ".join(monitor.features),
        "interval (s)": monitor.state.interval_seconds,
        "window (s)": monitor.config.get("window_seconds"),
        "thresholds": monitor.config.get("thresholds") or "calibrated rule",
        "alert": ", ".join(c["type"] for c in monitor.config.get("alert", [])),
        "alert after": "{} of {} windows".format(*monitor.config.get("alert_after", [1, 1])),
        "next run": monitor.next_run_at}, sort=False))
    output.show(output.table("runs", ["window end", "trigger", "state", "rows", "breaches"], [
        [r.window_end, r.trigger, r.state, r.result.get("rows", 0),
         ", ".join(r.result.get("breaches", [])) or "-"] for r in history]))
    if report is not None:
        output.note(f"report written to {report}")


@app.command("alerts")
@command
def alerts(
    monitor: Annotated[str | None, typer.Option("--monitor", help="Only this monitor's")]
    = None,
    state: Annotated[str | None, typer.Option("--state", help="open or resolved")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
) -> None:
    """Alerts, newest first."""
    configure()
    found = sy.list_alerts(monitor, state, limit)
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["raised", "monitor", "kind", "severity", "state",
                                    "features", "model"], [
        [a.created_at, a.monitor, a.kind, a.severity, a.state,
         ", ".join(f["name"] for f in a.features[:5]),
         f"{a.model or '?'}:{a.model_version}" if a.model_version else "-"]
        for a in found]))
    if not found:
        output.note("no alerts")
