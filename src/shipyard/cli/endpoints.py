"""``shipyard endpoints ...``: endpoints, their deployed models and traffic, predictions."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

import shipyard as sy
from shipyard.cli import output
from shipyard.cli.state import command, configure, current, fail, usage_errors
from shipyard.registry.refs import parse_ref

app = typer.Typer(help="Endpoints: deploy model versions, split traffic, predict.",
                  no_args_is_help=True)


def _deployment_rows(endpoint: Any) -> list[list[Any]]:
    return [[d.id, "shadow" if d.shadow else d.traffic_percentage,
             (d.alias or "") + (" (followed)" if d.follow_alias else ""), d.min_replicas,
             d.max_replicas, d.runtime, d.created_at] for d in endpoint.deployments]


_DEPLOYMENT_COLUMNS = ["deployed model", "traffic %", "alias", "min replicas",
                       "max replicas", "runtime", "deployed"]


def _show(endpoint: Any) -> None:
    if current().json:
        output.print_json(endpoint.state)
        return
    summary = {"endpoint": endpoint.name, "project": endpoint.project,
               "description": endpoint.description, "labels": endpoint.labels,
               "created": endpoint.created_at, "updated": endpoint.updated_at}
    parts: list[Any] = [output.key_values(endpoint.name, summary, sort=False)]
    if endpoint.deployments:
        parts.append(output.table("Deployed models", _DEPLOYMENT_COLUMNS,
                                  _deployment_rows(endpoint)))
    output.show(*parts)
    if not endpoint.deployments:
        output.note(f"nothing deployed: shipyard endpoints deploy {endpoint.name} MODEL:VERSION")


@app.command("list")
@command
def list_endpoints() -> None:
    """List the project's endpoints and their traffic splits."""
    configure()
    found = sy.list_endpoints()
    if current().json:
        output.print_json([e.state for e in found])
        return
    output.show(output.table(None, ["name", "traffic", "updated"], [
        [e.name, e.traffic, e.updated_at] for e in found]))
    if not found:
        output.note("no endpoints: shipyard endpoints create NAME")


@app.command("show")
@command
def show(name: Annotated[str, typer.Argument(help="Endpoint name")]) -> None:
    """Show an endpoint: its deployed models and their traffic."""
    configure()
    _show(sy.get_endpoint(name))


@app.command("create")
@command
def create(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    description: Annotated[str, typer.Option("--description", help="What it serves")] = "",
) -> None:
    """Create an endpoint (serving nothing until a model is deployed to it)."""
    configure()
    _show(sy.create_endpoint(name, description=description))


@app.command("delete")
@command
def delete(name: Annotated[str, typer.Argument(help="Endpoint name")]) -> None:
    """Delete an endpoint that serves nothing (undeploy its models first)."""
    configure()
    sy.delete_endpoint(name)
    if not current().json:
        output.show(f"endpoint {name} deleted")


@app.command("deploy")
@command
def deploy(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    model: Annotated[str, typer.Argument(help="name:3, name@alias or name (latest)")],
    traffic: Annotated[int | None, typer.Option(
        "--traffic", min=0, max=100,
        help="Percentage of requests (default: 100 for the first model, else 0)")] = None,
    min_replicas: Annotated[int, typer.Option("--min-replicas", min=1)] = 1,
    max_replicas: Annotated[int, typer.Option("--max-replicas", min=1)] = 1,
    shadow: Annotated[bool, typer.Option(
        "--shadow", help="Send it a copy of the traffic; its answers are logged, not "
                         "returned")] = False,
    follow_alias: Annotated[bool, typer.Option(
        "--follow-alias", help="With name@alias: move to the alias's new version when "
                               "the alias moves")] = False,
    runtime: Annotated[str, typer.Option(
        "--runtime", help="local (the server's replica processes) or ray (a Ray Serve "
                          "application on the Ray cluster RAY_ADDRESS names)")] = "local",
) -> None:
    """Deploy a model version; the models already there share the rest of the traffic."""
    with usage_errors(ref="MODEL", traffic_percentage="--traffic",
                      min_replicas="--min-replicas", max_replicas="--max-replicas",
                      shadow="--shadow", follow_alias="--follow-alias", runtime="--runtime"):
        ref = parse_ref(model)
        configure()
        endpoint = sy.get_endpoint(name)
        endpoint.deploy(ref.name, version=ref.version, alias=ref.alias,
                        traffic_percentage=traffic, min_replicas=min_replicas,
                        max_replicas=max_replicas, shadow=shadow, follow_alias=follow_alias,
                        runtime=runtime)
    _show(endpoint)


def _split(pairs: list[str]) -> dict[str, int]:
    split: dict[str, int] = {}
    for pair in pairs:
        key, sep, value = pair.rpartition("=")
        if not sep or not value.strip().isdigit():
            raise typer.BadParameter(f"{pair!r}: write MODEL:VERSION=PERCENT, e.g. lead:3=90",
                                     param_hint="SPLIT")
        split[key] = int(value)
    return split


@app.command("traffic")
@command
def traffic(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    split: Annotated[list[str], typer.Argument(
        help="MODEL:VERSION=PERCENT ..., adding up to 100 (models left out get 0)")],
) -> None:
    """Set the traffic split, e.g. lead:3=90 lead:4=10."""
    parsed = _split(split)
    configure()
    endpoint = sy.get_endpoint(name)
    _show(endpoint.set_traffic(parsed))


@app.command("canary")
@command
def canary(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    deployed: Annotated[str, typer.Argument(help="The deployed model to move traffic to")],
    steps: Annotated[str, typer.Option(
        "--steps", help="Its percentages, rising, comma-separated")] = "10,50,100",
    interval: Annotated[float, typer.Option(
        "--interval", min=0, max=86_400, help="Seconds to wait after each step")] = 60.0,
) -> None:
    """Move traffic to a deployed model in steps (a canary), waiting between them."""
    parts = [part.strip() for part in steps.split(",")]
    if not all(part.isdigit() for part in parts):
        raise typer.BadParameter(f"{steps!r}: write rising percentages, e.g. 10,50,100",
                                 param_hint="--steps")
    with usage_errors(steps="--steps", interval="--interval", deployed_model_id="DEPLOYED"):
        configure()
        endpoint = sy.get_endpoint(name)
        rollout = endpoint.canary(deployed, steps=[int(p) for p in parts], interval=interval)
    if current().json:
        output.print_json(rollout)
        return
    _show(endpoint)


@app.command("rollout")
@command
def rollout(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    deployed: Annotated[str, typer.Argument(
        help="The deployed model to judge (deploy it first, e.g. with --traffic 0)")],
    percent: Annotated[int, typer.Option("--percent", help="Its share of the requests")] = 10,
    after_requests: Annotated[int, typer.Option(
        "--after-requests", help="Its requests before the verdict")] = 100,
    max_latency_ratio: Annotated[float, typer.Option(
        "--max-latency-ratio", help="Its p95 latency allowed, as a multiple of the "
        "champions'")] = 1.5,
    prediction_tolerance: Annotated[float | None, typer.Option(
        "--prediction-tolerance", help="How far its mean prediction may be from the "
        "champions' (unchecked when left out)")] = None,
    promote_alias: Annotated[str, typer.Option(
        "--promote-alias", help="The alias moved to its version on promotion ('' for "
        "none)")] = "production",
    error_rate_alpha: Annotated[float, typer.Option(
        "--error-rate-alpha", help="The error-rate test's level")] = 0.05,
    max_error_rate_increase: Annotated[float, typer.Option(
        "--max-error-rate-increase", help="The error-rate increase tolerated")] = 0.0,
) -> None:
    """Start a durable canary: the workers promote it or roll it back from the request log
    (unlike 'canary', which moves traffic from this process)."""
    options = {"percent": "--percent", "after_requests": "--after-requests",
               "max_latency_ratio": "--max-latency-ratio",
               "prediction_tolerance": "--prediction-tolerance",
               "promote_alias": "--promote-alias", "error_rate_alpha": "--error-rate-alpha",
               "max_error_rate_increase": "--max-error-rate-increase",
               "deployed_model_id": "DEPLOYED"}
    with usage_errors(**options):
        configure()
        endpoint = sy.get_endpoint(name)
        started = endpoint.start_rollout(
            deployed, percent=percent, after_requests=after_requests,
            max_latency_ratio=max_latency_ratio, prediction_tolerance=prediction_tolerance,
            promote_alias=promote_alias or None, error_rate_alpha=error_rate_alpha,
            max_error_rate_increase=max_error_rate_increase)
    if current().json:
        output.print_json(started)
        return
    _show(endpoint)
    output.note(f"rollout {started.id}: {started.candidate} at {started.percent}%, judged "
                f"after {started.after_requests} requests by the workers; "
                f"shipyard endpoints rollouts {name} {started.id}")


@app.command("rollouts")
@command
def rollouts(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    rollout_id: Annotated[str | None, typer.Argument(
        help="One rollout's id, to show its verdict and reasons")] = None,
) -> None:
    """List an endpoint's canary rollouts, or show one with its verdict and reasons."""
    configure()
    endpoint = sy.get_endpoint(name)
    if rollout_id is not None:
        with usage_errors(rollout_id="ROLLOUT_ID"):
            one = endpoint.get_rollout(rollout_id)
        if current().json:
            output.print_json(one)
            return
        decision = one.decision or {}
        output.show(output.key_values(f"Rollout {one.id}", {
            "candidate": one.candidate, "champions": ", ".join(one.champions),
            "state": one.state, "percent": one.percent,
            "after requests": one.after_requests, "started": one.started_at,
            "decided": one.decided_at, "verdict": decision.get("verdict"),
            "criteria": one.criteria}, sort=False))
        for reason in decision.get("reasons", []):
            output.note(f"- {reason}")
        return
    found = endpoint.rollouts()
    if current().json:
        output.print_json(found)
        return
    output.show(output.table(None, ["id", "candidate", "state", "percent", "started",
                                    "decided"], [
        [r.id, r.candidate, r.state, r.percent, r.started_at, r.decided_at]
        for r in found]))
    if not found:
        output.note(f"no rollouts: shipyard endpoints rollout {name} MODEL:VERSION")


@app.command("undeploy")
@command
def undeploy(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    deployed: Annotated[str, typer.Argument(help="The deployed model, e.g. lead:3")],
) -> None:
    """Remove a deployed model; its traffic goes to the others in proportion."""
    configure()
    endpoint = sy.get_endpoint(name)
    _show(endpoint.undeploy(deployed))


@app.command("predict")
@command
def predict(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    instances: Annotated[str | None, typer.Option(
        "--instances", "-i",
        help='JSON rows: [{"feature": value, ...}] or [[values in signature order]]')] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="A JSON file with the rows, or {\"instances\": rows}; - for stdin",
        allow_dash=True)] = None,
) -> None:
    """Ask an endpoint for predictions."""
    rows = _rows(instances, file)
    configure()
    answer = sy.get_endpoint(name).predict(rows)
    if current().json:
        output.print_json(answer)
        return
    output.show(output.table(f"{name}: answered by {answer.deployed_model_id}",
                             ["row", "prediction"],
                             [[i, p] for i, p in enumerate(answer.predictions)]))


def _rows(instances: str | None, file: Path | None) -> Any:
    """The rows from --instances or --file (a JSON list, or {"instances": rows})."""
    if (instances is None) == (file is None):
        raise typer.BadParameter("give the rows with --instances or --file (one of them)",
                                 param_hint="--instances")
    text = instances if instances is not None else (
        sys.stdin.read() if str(file) == "-" else Path(str(file)).read_text())
    try:
        rows = json.loads(text)
    except ValueError as exc:
        fail(f"the instances are not valid JSON: {exc}", "instances")
    if isinstance(rows, dict) and "instances" in rows:
        rows = rows["instances"]
    return rows


@app.command("explain")
@command
def explain(
    name: Annotated[str, typer.Argument(help="Endpoint name")],
    instances: Annotated[str | None, typer.Option(
        "--instances", "-i",
        help='JSON rows: [{"feature": value, ...}] or [[values in signature order]]')] = None,
    file: Annotated[Path | None, typer.Option(
        "--file", "-f", help="A JSON file with the rows, or {\"instances\": rows}; - for stdin",
        allow_dash=True)] = None,
    method: Annotated[str | None, typer.Option(
        "--method", help="auto, tree_shap or sampled_shapley (default: auto)")] = None,
    path_count: Annotated[int | None, typer.Option(
        "--path-count", min=1, max=50, help="Feature orders for sampled Shapley")] = None,
) -> None:
    """Ask an endpoint for predictions and their feature attributions."""
    rows = _rows(instances, file)
    with usage_errors(method="--method", path_count="--path-count"):
        configure()
        answer = sy.get_endpoint(name).explain(rows, method=method, path_count=path_count)
    if current().json:
        output.print_json(answer)
        return
    table = []
    for i, item in enumerate(answer.explanations):
        attribution = item["attributions"][0]
        features = attribution.get("featureAttributions") or {}
        top = sorted(features.items(), key=lambda kv: -abs(float(kv[1])))
        table.append([i, answer.predictions[i] if i < len(answer.predictions) else "",
                      attribution.get("baselineOutputValue"),
                      ", ".join(f"{k}={float(v):+.4g}" for k, v in top)])
    output.show(output.table(f"{name}: explained by {answer.deployed_model_id}",
                             ["row", "prediction", "baseline", "attributions"], table))
