"""The quickstart's closing summary: steps, figures, the registry's decision, lineage, and
the commands that show the same things in more detail."""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from shipyard.quickstart.loop import LoopOutcome, verdict_line
from shipyard.quickstart.monitoring import DriftFound
from shipyard.quickstart.pipeline import MODEL_NAME
from shipyard.quickstart.serving import ServedLeads, top_reasons

if TYPE_CHECKING:
    from shipyard.lineage.models import ArtifactNode, LineageGraph
    from shipyard.quickstart.run import QuickstartResult


def lineage_chain(graph: LineageGraph) -> list[str]:
    """The root artifact's ancestry as lines, oldest first: step, its output, step, ...

    From each artifact it goes to the step that produced it, then to that step's main
    input: a dataset (the training split before others), else a model. That is the path
    from the generated data to the registered version; side inputs (the preprocessor, the
    metrics) are left to ``shipyard lineage show``.
    """
    artifacts = {a.id: a for a in graph.artifacts}
    executions = {e.id: e for e in graph.executions}
    produced_by = {e.artifact_id: e.execution_id for e in graph.events if e.kind == "output"}
    inputs: dict[str, list[ArtifactNode]] = {}
    for e in graph.events:
        if e.kind == "input" and e.artifact_id in artifacts:
            inputs.setdefault(e.execution_id, []).append(artifacts[e.artifact_id])
    lines: list[str] = []
    current = artifacts.get(graph.root)
    seen: set[str] = set()
    while current is not None and current.id not in seen:
        seen.add(current.id)
        kind = current.type.removeprefix("system.")
        lines.append(f"  -> {kind} {current.name}  {current.id}")
        execution = executions.get(produced_by.get(current.id, ""))
        if execution is None:
            break
        lines.append(f"step {execution.name.rsplit('/', 1)[-1]}")
        ranked = sorted(inputs.get(execution.id, []), key=_main_input_rank)
        current = ranked[0] if ranked and _main_input_rank(ranked[0]) < 3 else None
    lines.reverse()
    return lines


def _main_input_rank(artifact: ArtifactNode) -> int:
    kind = artifact.type.removeprefix("system.")
    if kind == "Dataset":
        return 0 if "train" in artifact.name else 1
    return 2 if kind == "Model" else 3


def home_flag(home: Path) -> str:
    """`` --home DIR`` when ``home`` is not the one a bare command would use, else ``""``."""
    default = Path(os.environ.get("SHIPYARD_HOME") or Path.home() / ".shipyard")
    return "" if home == default else f" --home {shlex.quote(str(home))}"


def next_commands(result: QuickstartResult) -> list[str]:
    """The commands to look further, with ``--home`` when the home is not the default one."""
    flag = home_flag(result.home)
    commands = [f"shipyard runs list{flag}", f"shipyard models history {MODEL_NAME}{flag}"]
    if result.production is not None and result.production.artifact_id:
        commands.append(f"shipyard lineage show {result.production.artifact_id}{flag}")
    if result.served is not None:
        commands.append(f"shipyard endpoints show {result.served.endpoint}{flag}")
    if result.drift is not None:
        commands.append(f"shipyard monitors alerts {result.drift.monitor}{flag}")
    loop = result.loop
    if loop is not None and loop.pipeline_run_id is not None:
        commands.append(f"shipyard events triggers firings {loop.retrain_trigger}{flag}")
        commands.append(f"shipyard pipelines show {loop.pipeline_run_id}{flag}")
    # The web console: the server prints a one-time login link to open in a browser.
    commands.append(f"shipyard server{flag}    # then open the console link it prints")
    return commands


def decision_line(result: QuickstartResult) -> str:
    prod = result.production
    prod_text = "none" if prod is None else f"version {prod.version} ({prod.semver or 'no semver'})"
    if not result.registered:
        return f"nothing new registered (every step was cached); production is {prod_text}"
    if result.promoted:
        return (
            f"registered version {result.version} and promoted it to production as "
            f"{result.semver}: {result.reason}"
        )
    return (
        f"registered version {result.version}, not promoted ({result.reason}); "
        f"production stays {prod_text}"
    )


def print_summary(console: Console, result: QuickstartResult) -> None:
    ran, cached = len(result.executed), len(result.cached)
    console.print(
        f"\n[bold]Steps[/]    {ran} ran, {cached} cached  [dim](run {result.run_id}, "
        f"{result.seconds:.1f} s)[/]"
    )
    figures = "  ".join(f"{k} {v:.4f}" for k, v in result.metrics.items())
    console.print(f"[bold]Metrics[/]  {figures}  [dim](held-out leads)[/]")
    console.print(f"[bold]Model[/]    {escape(decision_line(result))}", soft_wrap=True)
    if result.lineage:
        console.print("[bold]Lineage[/]  of the production model, from dataset to version:")
        for line in result.lineage:
            console.print(f"  {escape(line)}", soft_wrap=True)
    if result.served is not None:
        print_served(console, result.served)
    if result.drift is not None:
        print_drift(console, result.drift)
    if result.loop is not None:
        print_loop(console, result.loop)
    console.print("[bold]Next[/]")
    for command in next_commands(result):
        console.print(f"  {escape(command)}")
    if result.served is not None and result.served.curl:
        console.print("  # once the server runs, score seed 002's lead over HTTP:")
        console.print(f"  {escape(result.served.curl)}", soft_wrap=True)


def print_served(console: Console, served: ServedLeads) -> None:
    console.print(f"[bold]Serving[/]  {served.endpoint}: {escape(served.deployed_model_id)} "
                  f"({escape(served.action)})")
    table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 1), show_edge=False)
    # Short headings and few columns, so the table fits 80 columns.
    for heading in ("score", "size", "industry", "product", "why (top 2)"):
        table.add_column(heading, justify="right" if heading in ("score", "size")
                         else "left", no_wrap=True)
    for lead, score, why in zip(served.leads, served.scores, served.attributions,
                                strict=True):
        table.add_row(f"{score:.3f}", *(escape(_cell(lead.get(c))) for c in (
            "company_size", "industry", "product_interest")),
                      escape(top_reasons(why)))
    console.print(table)
    console.print(f"  [dim](the first lead is seed 002's example lead; why: the features that "
                  f"moved its score most from the baseline's {served.baseline_score:.3f}, "
                  f"sampled Shapley)[/]", soft_wrap=True)


def print_drift(console: Console, drift: DriftFound) -> None:
    console.print(f"[bold]Drift[/]    {drift.monitor} judged {drift.judged_rows:,} logged leads "
                  f"(the last hour, {drift.sent:,} from a new campaign) against the training "
                  "data:", soft_wrap=True)
    if not drift.drifted:
        console.print(f"  none of {drift.features} features drifted")
    else:
        table = Table(box=None, pad_edge=False, padding=(0, 1, 0, 1), show_edge=False)
        for heading in ("drifted", "metric", "value", "threshold"):
            table.add_column(heading, justify="right" if heading in ("value", "threshold")
                             else "left", no_wrap=True)
        for name, metric, value, threshold in drift.drifted:
            table.add_row(escape(name), escape(metric), f"{value:.4g}", f"{threshold:.4g}")
        console.print(table)
    if drift.alert is not None:
        console.print(f"  [yellow]{escape(drift.alert)}[/]  [dim](published on the "
                      "monitor-alert-raised topic)[/]", soft_wrap=True)


def print_loop(console: Console, loop: LoopOutcome) -> None:
    """The closed loop in a few lines: the alert, the retraining run, the candidate against
    the champion, the canary's verdict."""
    when = "  [dim](in an earlier quickstart: the alert is still open)[/]" if loop.already \
        else ""
    console.print(f"[bold]Loop[/]     alert {escape(str(loop.alert_id))} -> trigger "
                  f"{escape(loop.retrain_trigger)} -> pipeline run "
                  f"{escape(str(loop.pipeline_run_id))}{when}", soft_wrap=True)
    if loop.pipeline_run_id is None or loop.run_state != "SUCCEEDED":
        console.print(f"  {escape(loop.note)}", soft_wrap=True)
        return
    steps = f"{len(loop.executed)} ran, {len(loop.cached)} cached"
    console.print(f"  retrained on {loop.fresh_rows:,} fresh leads ({steps}): candidate rmse "
                  f"{loop.candidate_rmse:.4f}, champion {MODEL_NAME}:{loop.champion} "
                  f"{loop.champion_rmse:.4f} on the same held-out leads", soft_wrap=True)
    if loop.candidate == 0:
        console.print(f"  {escape(loop.reason)}", soft_wrap=True)
        return
    console.print(f"  registered {MODEL_NAME}:{loop.candidate}; trigger "
                  f"{escape(loop.canary_trigger)} deployed it as a "
                  f"{loop.rollout.percent if loop.rollout else '?'}% canary", soft_wrap=True)
    if loop.rollout is None:
        console.print(f"  {escape(loop.note)}", soft_wrap=True)
        return
    took = ("" if loop.alert_to_decision_s is None
            else f"  [dim]({loop.alert_to_decision_s:.1f} s from the alert)[/]")
    colour = {"promoted": "green", "rolled_back": "yellow"}.get(loop.rollout.state, "cyan")
    console.print(f"  [{colour}]{escape(verdict_line(loop))}[/]{took}", soft_wrap=True)
    console.print(f"  production is {MODEL_NAME}:{loop.production}")


def _cell(value: object) -> str:
    return "-" if value is None else str(value)
