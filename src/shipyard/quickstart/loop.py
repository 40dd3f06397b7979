"""The quickstart's closed loop: the monitor's alert retrains, the winner goes out as a
canary, and the canary is promoted or rolled back.

Nothing here is a second implementation of the loop: ``enable_loop`` sets up the recipe
(``events.automation.enable_retraining``: two triggers), and ``close_loop`` does what a
``shipyard worker`` would do with it, in this process, by driving the worker's own job
sources one unit at a time:

1. ``Triggers``: the ``<endpoint>-retrain`` trigger reads the ``monitor-alert-raised``
   event and queues a run of the lead-scoring pipeline on fresh leads (half from the new
   campaign), with the served version as the champion to beat and the alert's id among the
   run's arguments;
2. ``PipelineQueue``: the run trains the candidate, scores it and the champion on the same
   held-out fresh leads, and registers the candidate only if it wins;
3. ``Triggers`` again: the registration (``model-version-registered``) makes the
   ``<endpoint>-canary`` trigger deploy the winner with 10% of the endpoint's requests;
4. the quickstart then plays the clients, sending fresh leads to the endpoint, while
   ``CanaryRollouts`` judges the canary from the request log: after ``after_requests`` of
   its requests it is promoted to 100% (``production`` moves to it, the champion is
   undeployed) unless its latency or its error rate is worse than the champion's, in which
   case it is rolled back.

Each step leaves its record: the trigger's firings and audit rows, the pipeline run (whose
``alert`` argument names the alert), the model version (its lineage back to the fresh
leads), the rollout and its decision. A rerun finds the alert still open (the drift goes on)
and shows what the loop did for it rather than acting again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.events import bus
from shipyard.events.automation import enable_retraining, retraining_names
from shipyard.events.triggers import PREFIX
from shipyard.pipelines import PipelineRun, get_pipeline_run
from shipyard.quickstart.data import CANARY_REQUESTS, MAX_SEED, generate_leads
from shipyard.quickstart.monitoring import MONITOR, DriftFound
from shipyard.quickstart.pipeline import MODEL_NAME, PIPELINE_NAME
from shipyard.quickstart.progress import report_tasks
from shipyard.quickstart.serving import ENDPOINT, records
from shipyard.serving.rollouts import CanaryRollout, CanaryRollouts, list_rollouts
from shipyard.store.types import utcnow
from shipyard.worker.events import Triggers
from shipyard.worker.sources import PipelineQueue

if TYPE_CHECKING:
    from rich.console import Console

    from shipyard.context import RequestContext
    from shipyard.events.automation_port import AutomationPort
    from shipyard.monitoring.port import MonitoringPort
    from shipyard.runtime import Runtime
    from shipyard.serving.port import ServingPort

WORKER = "quickstart"  # the worker name on leases and claimed runs
CAMPAIGN_SHARE = 0.5  # of the fresh leads the retraining run trains on
CANARY_PERCENT = 10
BATCH = 20  # requests sent between two judgements of the canary
MAX_CANARY_SECONDS = 90.0
_POLL = 0.2


def fresh_rows(rows: int) -> int:
    """The fresh leads retraining runs on: an eighth as many as the training leads (at
    least 1,000), the few weeks of leads since the campaign started."""
    return max(rows // 8, 1_000)


def fresh_seed(seed: int) -> int:
    return (seed + 11) % (MAX_SEED + 1)


@dataclass(frozen=True)
class LoopOutcome:
    """What the closed loop did for the monitor's alert; ``already``: it had done it in an
    earlier quickstart (the alert was open already), and this is that record."""

    alert_id: str | None
    retrain_trigger: str
    canary_trigger: str
    already: bool = False
    note: str = ""  # why the loop stopped early, when it did
    pipeline_run_id: str | None = None
    run_state: str | None = None
    executed: list[str] = field(default_factory=list)
    cached: list[str] = field(default_factory=list)
    fresh_rows: int = 0
    champion: int = 0
    candidate: int = 0  # the version registered (0: the champion won, nothing registered)
    candidate_rmse: float | None = None
    champion_rmse: float | None = None
    reason: str = ""
    rollout: CanaryRollout | None = None
    requests_sent: int = 0
    production: int = 0  # the production version once the loop is over
    alert_to_decision_s: float | None = None

    @property
    def decision(self) -> str | None:
        """``promoted``, ``rolled_back``, ``running`` or None (no canary)."""
        return None if self.rollout is None else self.rollout.state


def enable_loop(automation: AutomationPort, runtime: Runtime, ctx: RequestContext, *,
                rows: int, seed: int, canary_requests: int = CANARY_REQUESTS) -> None:
    """Make sure the recipe's two triggers exist (the first quickstart in a home creates
    them, with its settings; later ones keep them and their history), and start the canary
    trigger from now: this run's own training registered a version just before, and that
    registration is not the loop's (its pipeline decided on production itself)."""
    arguments: dict[str, Any] = {
        "rows": fresh_rows(rows), "seed": fresh_seed(seed), "campaign": CAMPAIGN_SHARE,
        "champion": "{{ event.version }}", "alert": "{{ event.alert_id }}"}
    names = retraining_names(ENDPOINT)
    existing = {t.name for t in automation.list_triggers()}
    if not all(n in existing for n in names):
        for name in names:  # one left alone (deleted by hand): both anew
            if name in existing:
                automation.delete_trigger(name)
        enable_retraining(automation, endpoint=ENDPOINT, monitor=MONITOR,
                          pipeline=PIPELINE_NAME, model=MODEL_NAME, arguments=arguments,
                          canary_percent=CANARY_PERCENT, after_requests=canary_requests)
    bus.seek(runtime.store, ctx, PREFIX + names[1], utcnow())


def close_loop(runtime: Runtime, serving: ServingPort, automation: AutomationPort,
               monitoring: MonitoringPort, ctx: RequestContext, drift: DriftFound, *,
               seed: int, console: Console) -> LoopOutcome:
    """Carry the loop from the monitor's alert to the canary's verdict (see the module)."""
    retrain_name, canary_name = retraining_names(ENDPOINT)
    outcome = LoopOutcome(alert_id=drift.alert_id, retrain_trigger=retrain_name,
                          canary_trigger=canary_name)
    if drift.alert_id is None:
        return _with(outcome, note="the monitor raised no alert: nothing to retrain")
    store = runtime.store
    triggers = Triggers()
    earlier = _run_for_alert(store, ctx.project, drift.alert_id)
    # Always: an alert an interrupted quickstart raised may still wait for its trigger.
    with console.status(f"[bold]{retrain_name}[/] acts on alert {drift.alert_id}..."):
        _drain(triggers, runtime)
    run_id = _run_for_alert(store, ctx.project, drift.alert_id)
    if run_id is None:
        return _with(outcome, note=(
            f"alert {drift.alert_id} was raised before the loop was enabled, so no trigger "
            "saw it; the next alert of the monitor closes the loop"))
    already = (earlier is not None
               and get_pipeline_run(store, ctx.project, earlier).state != "QUEUED")
    outcome = _with(outcome, already=already, pipeline_run_id=run_id)
    if get_pipeline_run(store, ctx.project, run_id).state == "CANCELLED":
        # Interrupted with an earlier quickstart (which left it running; this one cancelled
        # it on starting): run it again in place, its finished steps kept.
        from shipyard.pipelines.runner import retry_pipeline_run

        retry_pipeline_run(store, runtime.artifacts, ctx, run_id, settings=runtime.settings,
                           submit=True)
        outcome = _with(outcome, already=False)
    if not outcome.already:
        console.print(f"[bold]Loop[/]     alert {drift.alert_id} -> trigger {retrain_name} "
                      f"-> pipeline run {run_id} (retraining on fresh leads)")
    run = _run_queued(runtime, ctx.project, run_id, console, quiet=outcome.already)
    evaluation = run.tasks.get("evaluate-model")
    register = run.tasks.get("register-model")
    arguments = run.arguments
    outcome = _with(outcome, run_state=run.state,
                    executed=[t.name for t in run.tasks.values()
                              if t.state == "SUCCEEDED" and not t.cached],
                    cached=[t.name for t in run.tasks.values() if t.cached],
                    fresh_rows=int(arguments.get("rows", 0)),
                    champion=int(arguments.get("champion", 0)))
    if not run.succeeded or evaluation is None or register is None:
        return _with(outcome, note=f"the retraining run ended {run.state}",
                     production=_production(store, ctx.project))
    candidate = int(register.outputs.get("version", 0))
    outcome = _with(outcome, candidate=candidate,
                    candidate_rmse=float(evaluation.outputs["rmse"]),
                    champion_rmse=float(evaluation.outputs["champion_rmse"]),
                    reason=str(register.outputs.get("reason", "")))
    if not outcome.already:
        console.print(f"  [bold]candidate[/] {_escape(outcome.reason)}", soft_wrap=True)
    if candidate == 0:
        return _with(outcome, production=_production(store, ctx.project))
    deployed_id = f"{MODEL_NAME}:{candidate}"
    rollout = _rollout_of(store, ctx.project, deployed_id)
    if rollout is None:
        with console.status(f"[bold]{canary_name}[/] deploys {deployed_id} as a canary..."):
            _drain(triggers, runtime)
            rollout = _rollout_of(store, ctx.project, deployed_id)
            if rollout is None and outcome.already:
                # Registered by a quickstart interrupted before the canary trigger read the
                # event (and this run started the trigger from the drift step): replay it.
                from shipyard.registry import get_model_version

                registered = get_model_version(store, ctx.project, MODEL_NAME,
                                               version=candidate).created_at
                bus.seek(store, ctx, PREFIX + canary_name, registered)
                _drain(triggers, runtime)
                rollout = _rollout_of(store, ctx.project, deployed_id)
    if rollout is None:
        firings = automation.list_firings(canary_name, limit=1)
        why = firings[0].error if firings and firings[0].error else "no canary started"
        return _with(outcome, note=f"{canary_name}: {why}",
                     production=_production(store, ctx.project))
    sent = 0
    if rollout.state == "running":
        console.print(f"  [bold]canary[/]    {deployed_id} takes {rollout.percent}% of "
                      f"{ENDPOINT}'s requests (rollout {rollout.id}); promoted after "
                      f"{rollout.after_requests} of them unless worse than the champion")
        rollout, sent = _play_clients(runtime, serving, ctx.project, rollout, seed, console)
    outcome = _with(outcome, rollout=rollout, requests_sent=sent,
                    production=_production(store, ctx.project))
    if rollout.decided_at is not None:
        raised = next((a.created_at for a in monitoring.list_alerts(MONITOR, limit=1000)
                       if a.id == drift.alert_id), None)
        if raised is not None:
            outcome = _with(outcome, alert_to_decision_s=_between(raised, rollout.decided_at))
    if not outcome.already:
        console.print(f"  [bold]verdict[/]   {_verdict(outcome)}", soft_wrap=True)
    return outcome


def _with(outcome: LoopOutcome, **changes: Any) -> LoopOutcome:
    import dataclasses

    return dataclasses.replace(outcome, **changes)


def _drain(source: Triggers, runtime: Runtime, *, rounds: int = 5) -> None:
    """Let the triggers act on what is waiting (each pass reads every trigger's
    subscription)."""
    for _ in range(rounds):
        if not source.claim_and_run(runtime, WORKER):
            return


def _run_for_alert(store: Any, project: str, alert_id: str) -> str | None:
    """The pipeline run the retrain trigger queued for ``alert_id`` (its ``alert``
    argument), if it did."""
    from shipyard.pipelines import list_pipeline_runs

    return next((r.id for r in list_pipeline_runs(store, project, pipeline_name=PIPELINE_NAME,
                                                  limit=200)
                 if r.arguments.get("alert") == alert_id), None)


def _run_queued(runtime: Runtime, project: str, run_id: str, console: Console, *,
                quiet: bool) -> PipelineRun:
    """Run the queued run through the worker's pipeline queue, in a thread, showing its
    tasks as they settle; a run that already ended is returned as it is."""
    run = get_pipeline_run(runtime.store, project, run_id)
    if run.state != "QUEUED":
        return run
    failure: dict[str, BaseException] = {}

    def work() -> None:
        queue = PipelineQueue(project=project)
        try:
            # The queue takes the oldest queued run first: one left by an earlier,
            # interrupted quickstart runs before this one.
            while get_pipeline_run(runtime.store, project, run_id).state == "QUEUED":
                if not queue.claim_and_run(runtime, WORKER):
                    time.sleep(_POLL)
        except BaseException as exc:  # re-raised in the calling thread
            failure["error"] = exc

    worker = threading.Thread(target=work, name="quickstart-loop-runner", daemon=True)
    worker.start()
    shown: set[str] = set()
    with console.status("retraining...") as status:
        while worker.is_alive():
            worker.join(_POLL)
            if not quiet:
                report_tasks(console, status, get_pipeline_run(runtime.store, project,
                                                               run_id), shown)
    if "error" in failure:
        raise failure["error"]
    run = get_pipeline_run(runtime.store, project, run_id)
    if not quiet:
        report_tasks(console, None, run, shown)
    return run


def _rollout_of(store: Any, project: str, deployed_id: str) -> CanaryRollout | None:
    return next((r for r in list_rollouts(store, project, ENDPOINT)
                 if r.candidate == deployed_id), None)


def _play_clients(runtime: Runtime, serving: ServingPort, project: str,
                  rollout: CanaryRollout, seed: int, console: Console
                  ) -> tuple[CanaryRollout, int]:
    """Send fresh leads to the endpoint, one per request as a web form would, and let the
    workers' canary source judge the rollout every ``BATCH`` requests, until its verdict
    (or ``MAX_CANARY_SECONDS``)."""
    from shipyard.serving.rollouts import get_rollout

    leads = records(generate_leads(500, fresh_seed(seed) + 1, campaign=CAMPAIGN_SHARE))
    judge = CanaryRollouts(check_every=0.0)
    deadline = time.monotonic() + MAX_CANARY_SECONDS
    sent = 0
    with console.status(f"sending fresh leads to {ENDPOINT}...") as status:
        while rollout.state == "running" and time.monotonic() < deadline:
            for _ in range(BATCH):
                serving.predict(ENDPOINT, [leads[sent % len(leads)]])
                sent += 1
            judge.claim_and_run(runtime, WORKER)
            rollout = get_rollout(runtime.store, project, rollout.id)
            status.update(f"sending fresh leads to {ENDPOINT}: {sent} requests so far, "
                          f"the canary judged every {BATCH}...")
    return rollout, sent


def _production(store: Any, project: str) -> int:
    from shipyard.errors import ShipyardError
    from shipyard.registry import get_model_version

    try:
        return get_model_version(store, project, MODEL_NAME, alias="production").version
    except ShipyardError:
        return 0


def _between(start: datetime, end: datetime) -> float:
    return float((end - start).total_seconds())


def _verdict(outcome: LoopOutcome) -> str:
    """One line: what became of the canary, and why."""
    rollout = outcome.rollout
    if rollout is None:
        return "no canary"
    reasons = "; ".join(str(r) for r in (rollout.decision or {}).get("reasons", []))
    candidate = rollout.candidate
    if rollout.state == "promoted":
        return (f"{candidate} promoted to 100% and to production ({reasons})")
    if rollout.state == "rolled_back":
        return f"{candidate} rolled back, the champion keeps all the traffic ({reasons})"
    return (f"{candidate} still at {rollout.percent}% after {outcome.requests_sent} requests: "
            "a worker judges it (shipyard worker, or shipyard server)")


def verdict_line(outcome: LoopOutcome) -> str:
    return _verdict(outcome)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
