"""``shipyard models ...``: the model registry (versions, aliases, promotion, download)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current, usage_errors

app = typer.Typer(help="The model registry: versions, aliases, promotion and download.",
                  no_args_is_help=True)

_WHAT = "the model registry"
# Versions are 32-bit integers (shipyard.registry.refs.MAX_VERSION, the REST API's bound).
_MAX_VERSION = 2**31 - 1


class Mode(StrEnum):
    min = "min"
    max = "max"


def _version_rows(versions: list[Any]) -> list[list[Any]]:
    return [[v.version, v.semver, v.aliases, v.status, v.flavor, v.metrics, v.created_at]
            for v in versions]


_VERSION_COLUMNS = ["version", "semver", "aliases", "status", "flavor", "metrics", "created"]


@app.command("list")
@command
def list_models(
    filter: Annotated[str | None, typer.Option(
        "--filter", "-f", help="e.g. \"labels.team = 'sales'\"")] = None,
) -> None:
    """List registered models."""
    configure()
    models = sy.list_models(filter=filter)
    if current().json:
        output.print_json(models)
        return
    output.show(output.table(None, ["name", "latest", "aliases", "labels", "updated"], [
        [m.name, m.latest_version, m.aliases, m.labels, m.updated_at] for m in models]))
    if not models:
        output.note("no models registered")


@app.command("show")
@command
def show(ref: Annotated[str, typer.Argument(
        help="name (latest version), name:3 or name@alias")]) -> None:
    """Show one model version: aliases, status, metrics, labels, source and signature."""
    configure()
    version = sy.resolve_model(ref)
    if current().json:
        output.print_json(version)
        return
    summary = {
        "model": version.name, "version": version.version, "semver": version.semver or "",
        "aliases": version.aliases, "status": version.status, "flavor": version.flavor,
        "uri": version.uri, "run": version.run_id or "", "created": version.created_at,
        "created by": version.created_by or "", "description": version.description,
    }
    parts: list[Any] = [output.key_values(f"{version.name}:{version.version}", summary,
                                          sort=False)]
    if version.metrics:
        parts.append(output.key_values("Metrics", version.metrics))
    if version.labels:
        parts.append(output.key_values("Labels", version.labels))
    source = version.metadata.get("source")
    if isinstance(source, dict) and source:
        # Where the code that made it came from; the package list is long: runs show has it.
        parts.append(output.key_values(
            "Source", {k: v for k, v in source.items() if k != "source.packages"}))
    columns = (version.signature or {}).get("inputs") or (version.signature or {}).get(
        "columns")
    if isinstance(columns, list) and columns and isinstance(columns[0], dict):
        keys = list(columns[0])
        parts.append(output.table("Signature", keys, [[c.get(k) for k in keys]
                                                      for c in columns]))
    output.show(*parts)


@app.command("versions")
@command
def versions(
    name: Annotated[str, typer.Argument(help="Model name")],
    filter: Annotated[str | None, typer.Option(
        "--filter", "-f", help="e.g. 'metrics.rmse < 0.2'")] = None,
) -> None:
    """List the versions of a model."""
    configure()
    found = sy.list_model_versions(name, filter=filter)
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(name, _VERSION_COLUMNS, _version_rows(found)))


@app.command("alias")
@command
def alias(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. production")],
    version: Annotated[int, typer.Argument(min=1, max=_MAX_VERSION, help="Version number")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history)")] = "",
) -> None:
    """Point an alias at a version (recorded in the alias history)."""
    configure()
    moved = sy.set_alias(name, alias_name, version, reason=reason)
    _moved(moved, f"{name}@{alias_name} -> version {version}")


@app.command("history")
@command
def history(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias_name: Annotated[str | None, typer.Option("--alias", help="Only this alias")] = None,
) -> None:
    """Show who moved the model's aliases, when, why, and from which version to which;
    a promotion that kept the alias where it was shows as "kept"."""
    with usage_errors(alias="--alias"):
        configure()
        changes = sy.alias_history(name, alias=alias_name)
    if current().json:
        output.print_json(changes)
        return
    rows = [[c.created_at, c.alias, _change(c), c.actor, c.reason, _decision(c.decision)]
            for c in changes]
    output.show(output.table(name, ["time", "alias", "change", "actor", "reason",
                                    "decision"], rows, keep=["time", "change"]))


def _change(change: Any) -> str:
    """One history row's move: '1 → 2', 'set to 1', 'deleted (was 2)', or 'kept 2' for a
    promotion that turned its candidate down."""
    before, after = change.from_version, change.to_version
    if before == after:
        return f"kept {after}" if after is not None else "kept unset"
    if before is None:
        return f"set to {after}"
    if after is None:
        return f"deleted (was {before})"
    return f"{before} → {after}"


def _decision(decision: dict[str, Any] | None) -> str:
    if not decision:
        return ""
    if "metric" in decision:
        def figure(value: Any) -> str:
            if value is None:
                return "none"
            return f"{value:.6g}" if isinstance(value, float) else str(value)

        verdict = "promoted" if decision.get("promoted") else "rejected"
        return (f"{verdict} {decision.get('candidate_version')}: {decision.get('metric')} "
                f"{figure(decision.get('candidate_value'))} vs "
                f"{figure(decision.get('incumbent_value'))}")
    return str(decision.get("action", ""))


@app.command("rollback")
@command
def rollback(
    name: Annotated[str, typer.Argument(help="Model name")],
    alias_name: Annotated[str, typer.Argument(metavar="ALIAS", help="e.g. production")],
    reason: Annotated[str, typer.Option("--reason", help="Why (kept in the history)")] = "",
) -> None:
    """Move an alias back to the version it pointed at before its latest move."""
    configure()
    moved = sy.rollback_alias(name, alias_name, reason=reason)
    _moved(moved, f"{name}@{alias_name} rolled back to version {moved.version}")


def _moved(version: Any, message: str) -> None:
    if current().json:
        output.print_json(version)
    else:
        output.show(message)


@app.command("promote")
@command
def promote(
    name: Annotated[str, typer.Argument(help="Model name")],
    version: Annotated[int, typer.Argument(min=1, max=_MAX_VERSION,
                                           help="Candidate version")],
    metric: Annotated[str, typer.Option("--metric", help="Metric to compare")] = "rmse",
    mode: Annotated[Mode, typer.Option("--mode", help="min: lower wins; max: higher wins",
                                       case_sensitive=False)] = Mode.min,
    alias_name: Annotated[str, typer.Option("--alias", help="Alias to move")] = "production",
    min_delta: Annotated[float, typer.Option(
        "--min-delta", min=0.0, help="Required margin of improvement")] = 0.0,
) -> None:
    """Move the alias to VERSION only if it beats the current holder on METRIC.

    Exits 0 whether or not the alias moved; the decision says which.
    """
    configure()
    decision = sy.promote_if_better(
        name, version, metric=metric, mode=mode.value, alias=alias_name, min_delta=min_delta)
    if current().json:
        output.print_json(decision)
        return
    verdict = "[green]promoted[/green]" if decision.promoted else "[yellow]kept[/yellow]"
    output.show(f"{verdict}: {escape(decision.reason)}")
    output.show(output.table(None, ["", "version", metric], [
        ["candidate", version, decision.candidate_value],
        ["incumbent", decision.incumbent_version, decision.incumbent_value],
    ]))
    if decision.promoted and decision.semver:
        output.show(f"semver {decision.semver}")


@app.command("download")
@command
def download(
    ref: Annotated[str, typer.Argument(help="name, name:3, name@alias or models:/...")],
    dest: Annotated[Path, typer.Argument(
        help="A new or empty directory to write the model files into")],
) -> None:
    """Download a model version's files (manifest, model, signature) into DEST."""
    configure()
    where = sy.download_model(ref, dest)
    if current().json:
        output.print_json({"ref": ref, "path": str(where)})
    else:
        output.show(f"downloaded {escape(ref)} to {escape(str(where))}")
