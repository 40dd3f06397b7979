"""``shipyard endpoints ...`` in local mode (predictions in this process)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

import shipyard as sy
from shipyard import (  # noqa: F401  (what the commands call: a missing one fails here)
    create_endpoint,
    delete_endpoint,
    get_endpoint,
    list_endpoints,
)
from shipyard.sdk import session
from tests.cli.conftest import Cli
from tests.serving.conftest import frame, linear


@pytest.fixture
def lead(home: Path) -> str:
    sy.init()
    for slope in (1.0, 2.0):
        sy.register_model("lead", linear(slope), input_example=frame(5))
    session.reset()
    return "lead"


def test_create_deploy_traffic_predict_undeploy(cli: Cli, lead: str, tmp_path: Path) -> None:
    assert cli("endpoints", "create", "ep").exit_code == 0
    deployed = cli("endpoints", "deploy", "ep", "lead:1")
    assert deployed.exit_code == 0, deployed.stderr
    assert "lead:1" in deployed.stdout
    second = cli("--output", "json", "endpoints", "deploy", "ep", "lead:2", "--traffic", "25")
    assert second.exit_code == 0, second.stderr
    assert {d["id"]: d["traffic_percentage"] for d in second.json()["deployments"]} == {
        "lead:1": 75, "lead:2": 25}
    moved = cli("--output", "json", "endpoints", "traffic", "ep", "lead:2=100")
    assert moved.exit_code == 0, moved.stderr
    answer = cli("--output", "json", "endpoints", "predict", "ep", "-i", "[[3, 1.0]]")
    assert answer.exit_code == 0, answer.stderr
    assert answer.json()["deployed_model_id"] == "lead:2"
    assert round(answer.json()["predictions"][0], 6) == 6.0
    rows = tmp_path / "rows.json"
    rows.write_text('{"instances": [{"visits": 1, "time_on_site": 2.0}]}')
    table = cli("endpoints", "predict", "ep", "--file", str(rows))
    assert table.exit_code == 0 and "lead:2" in table.stdout
    listed = cli("endpoints", "list")
    assert "ep" in listed.stdout and "lead:2" in listed.stdout
    assert cli("endpoints", "undeploy", "ep", "lead:1").exit_code == 0
    assert "lead:1" not in cli("endpoints", "show", "ep").stdout
    models = cli("--output", "json", "models", "versions", "lead").json()
    assert {v["version"]: v["status"] for v in models} == {1: "registered", 2: "deployed"}


def test_errors_are_one_line(cli: Cli, lead: str) -> None:
    cli("endpoints", "create", "ep")
    cli("endpoints", "deploy", "ep", "lead:1")
    cli("endpoints", "traffic", "ep", "lead:1=90").assert_one_error_line("add up to 100")
    cli("endpoints", "traffic", "ep", "lead:1=x").assert_one_error_line(
        "MODEL:VERSION=PERCENT", exit_code=2)
    cli("endpoints", "deploy", "ep", "lead/1").assert_one_error_line("MODEL", exit_code=2)
    cli("endpoints", "deploy", "ep", "lead:2", "--traffic", "101").assert_one_error_line(
        "--traffic", exit_code=2)
    cli("endpoints", "predict", "ep", "-i", "[[1]]").assert_one_error_line("instances[0]")
    cli("endpoints", "predict", "ep", "-i", "{oops").assert_one_error_line("not valid JSON")
    cli("endpoints", "predict", "ep").assert_one_error_line("--instances", exit_code=2)
    cli("endpoints", "show", "nope").assert_one_error_line("nope")
    cli("endpoints", "delete", "ep").assert_one_error_line("undeploy")


def test_canary_shadow_follow_and_explain(cli: Cli, lead: str, tmp_path: Path) -> None:
    cli("endpoints", "create", "ep")
    first = cli("endpoints", "deploy", "ep", "lead:1")
    assert first.exit_code == 0, first.stderr
    second = cli("endpoints", "deploy", "ep", "lead:2", "--traffic", "0")
    assert second.exit_code == 0, second.stderr
    stepped = cli("--output", "json", "endpoints", "canary", "ep", "lead:2", "--steps",
                  "10,50,100", "--interval", "0")
    assert stepped.exit_code == 0, stepped.stderr
    assert stepped.json()["steps"] == [10, 50, 100] and not stepped.json()["rolled_back"]
    assert stepped.json()["traffic"] == {"lead:1": 0, "lead:2": 100}
    cli("endpoints", "canary", "ep", "lead:2", "--steps", "50,10").assert_one_error_line(
        "--steps", exit_code=2)
    cli("endpoints", "canary", "ep", "lead:2", "--steps", "ten").assert_one_error_line(
        "--steps", exit_code=2)
    cli("endpoints", "create", "live")
    cli("models", "alias", "lead", "production", "1")
    made = cli("endpoints", "deploy", "live", "lead@production", "--follow-alias")
    assert made.exit_code == 0, made.stderr
    shadow = cli("endpoints", "deploy", "live", "lead:2", "--shadow")
    assert shadow.exit_code == 0, shadow.stderr
    shown = cli("--output", "json", "endpoints", "show", "live").json()["deployments"]
    assert [(d["id"], d["alias"], d["follow_alias"], d["shadow"]) for d in shown] == [
        ("lead:1", "production", True, False), ("lead:2", None, False, True)]
    cli("endpoints", "deploy", "live", "lead:2", "--follow-alias").assert_one_error_line(
        "--follow-alias", exit_code=2)
    rows = tmp_path / "rows.json"
    rows.write_text('[{"visits": 4, "time_on_site": 2.0}]')
    explained = cli("--output", "json", "endpoints", "explain", "ep", "-f", str(rows),
                    "--method", "sampled_shapley", "--path-count", "5")
    assert explained.exit_code == 0, explained.stderr
    attribution = explained.json()["explanations"][0]["attributions"][0]
    assert attribution["instanceOutputValue"] == pytest.approx(8.0)  # lead:2 is 2 * visits
    assert sum(attribution["featureAttributions"].values()) + attribution[
        "baselineOutputValue"] == pytest.approx(8.0, abs=1e-6)
    table = cli("endpoints", "explain", "ep", "-i", "[[4, 2.0]]")
    assert table.exit_code == 0 and "visits=" in table.stdout, table.stderr
    cli("endpoints", "explain", "ep").assert_one_error_line("--instances", exit_code=2)
    cli("endpoints", "explain", "ep", "-i", "[[4, 2.0]]", "--method", "magic"
        ).assert_one_error_line("--method", exit_code=2)


def test_deploy_on_ray_needs_a_cluster(cli: Cli, lead: str,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert cli("endpoints", "create", "ep").exit_code == 0
    cli("endpoints", "deploy", "ep", "lead:1", "--runtime", "spark").assert_one_error_line(
        "--runtime", "spark", exit_code=2)
    cli("endpoints", "deploy", "ep", "lead:1", "--runtime", "ray").assert_one_error_line(
        "RAY_ADDRESS")
    with socket.socket() as head:  # all the check asks of a Ray head: it accepts connections
        head.bind(("127.0.0.1", 0))
        head.listen()
        monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{head.getsockname()[1]}")
        deployed = cli("--output", "json", "endpoints", "deploy", "ep", "lead:1",
                       "--runtime", "ray")
    assert deployed.exit_code == 0, deployed.stderr
    assert [(d["id"], d["runtime"]) for d in deployed.json()["deployments"]] == [
        ("lead:1", "ray")]
    assert "ray" in cli("endpoints", "show", "ep").stdout


def test_a_durable_rollout_from_the_command_line(cli: Cli, lead: str) -> None:
    cli("endpoints", "create", "ep")
    cli("endpoints", "deploy", "ep", "lead:1")
    cli("endpoints", "deploy", "ep", "lead:2", "--traffic", "0")
    cli("endpoints", "rollout", "ep", "lead:2", "--percent", "0").assert_one_error_line(
        "--percent", exit_code=2)
    cli("endpoints", "rollout", "ep", "lead:2", "--error-rate-alpha", "0.9"
        ).assert_one_error_line("--error-rate-alpha", exit_code=2)
    cli("endpoints", "rollout", "ep", "lead", "--percent", "5").assert_one_error_line(
        "DEPLOYED", exit_code=2)
    empty = cli("endpoints", "rollouts", "ep")
    assert empty.exit_code == 0 and "no rollouts" in empty.stderr + empty.stdout

    started = cli("--output", "json", "endpoints", "rollout", "ep", "lead:2", "--percent",
                  "25", "--after-requests", "40", "--promote-alias", "")
    assert started.exit_code == 0, started.stderr
    body = started.json()
    assert (body["candidate"], body["percent"], body["after_requests"], body["state"],
            body["promote_alias"]) == ("lead:2", 25, 40, "running", None)
    listed = cli("--output", "json", "endpoints", "rollouts", "ep").json()
    assert [r["id"] for r in listed] == [body["id"]]
    shown = cli("endpoints", "rollouts", "ep", body["id"])
    assert shown.exit_code == 0 and "lead:2" in shown.stdout and "running" in shown.stdout
    cli("endpoints", "rollouts", "ep", "f" * 32).assert_one_error_line(exit_code=1)
    shown = cli("--output", "json", "endpoints", "show", "ep").json()["deployments"]
    assert {d["id"]: d["traffic_percentage"] for d in shown} == {"lead:1": 75, "lead:2": 25}
