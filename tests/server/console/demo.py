"""A small project for the console's tests, written through the services in seconds (the
quick start takes a minute): runs with metrics over steps, a three-task pipeline run twice
(the second served from the cache, as the quick start's reruns are), one that failed, and
a model with two versions, an alias moved by a promotion decision and a signature, and
a subscription with two messages waiting and one dead letter, a schedule and two
triggers."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.linear_model import LinearRegression

from shipyard import dsl
from shipyard.config import Settings
from shipyard.context import RequestContext
from shipyard.events import bus, scheduler, triggers
from shipyard.pipelines import PipelineRun, run_pipeline
from shipyard.registry import service as registry
from shipyard.registry.promotion import promote_if_better
from shipyard.runtime import open_runtime
from shipyard.tracking import service as tracking
from shipyard.tracking.points import clean_metrics
from tests.pipelines import steps

PROJECT = "default"
EXPERIMENT = "console-demo"
MODEL = "lead-scoring"
TOPIC, SUBSCRIPTION = "console-demo", "console-demo-worker"
SCHEDULE, TRIGGER, HOOK = "nightly-retrain", "retrain-on-register", "tell-deployers"
SECRET = "s3cret-in-the-hook"  # in a webhook's URL query and header: never on a page


@dataclass(frozen=True)
class Demo:
    run_ids: list[str]
    pipeline_run: PipelineRun
    cached_run: PipelineRun
    failed_run: PipelineRun
    model_artifact: str
    dataset_artifact: str


@dsl.component
def fail(data: dsl.Input[dsl.Dataset]) -> None:
    raise RuntimeError("this step fails on purpose")


@dsl.pipeline(name="demo-pipeline")
def demo_pipeline(ledger: str, text: str = "hello") -> None:
    made = steps.produce(ledger=ledger, text=text)
    shaped = steps.transform(ledger=ledger, data=made.outputs["out"])
    steps.consume(ledger=ledger, data=shaped.outputs["out"])


@dsl.pipeline(name="failing-pipeline")
def failing_pipeline(ledger: str) -> None:
    made = steps.produce(ledger=ledger, text="doomed")
    fail(data=made.outputs["out"])


def fill(settings: Settings, tmp: Path) -> Demo:
    ctx = RequestContext(project=PROJECT, actor="tester")
    runtime = open_runtime(settings, cached=False)
    store, artifacts = runtime.store, runtime.artifacts
    try:
        run_ids = []
        for n, rate in enumerate((0.1, 0.05, 0.01)):
            run = tracking.create_run(store, ctx, EXPERIMENT, name=f"lr-{n}",
                                      params={"learning_rate": rate, "depth": 3 + n})
            points = [{"key": "loss", "value": 1.0 / (step + 1) + rate, "step": step}
                      for step in range(12)]
            points.append({"key": "rmse", "value": 0.2 - rate, "step": 0})
            tracking.log_batch(store, ctx, run.id, metrics=clean_metrics(points),
                               tags={"team": "console"})
            tracking.set_terminated(store, ctx, run.id)
            run_ids.append(run.id)
        ledger = str(tmp / "ledger.txt")
        first = run_pipeline(store, artifacts, ctx, demo_pipeline, {"ledger": ledger},
                             settings=settings, inline=True)
        again = run_pipeline(store, artifacts, ctx, demo_pipeline, {"ledger": ledger},
                             settings=settings, inline=True)
        failed = run_pipeline(store, artifacts, ctx, failing_pipeline, {"ledger": ledger},
                              settings=settings, inline=True, raise_on_error=False)
        frame = pd.DataFrame({"size": np.arange(20.0), "visits": np.arange(20.0) % 7})
        target = frame["size"] * 0.5 + frame["visits"]
        for version, noise in ((1, 0.3), (2, 0.1)):
            model = LinearRegression().fit(frame, target + noise)
            registry.register_model(store, artifacts, ctx, MODEL, model,
                                    input_example=frame.head(3),
                                    metrics={"rmse": noise, "r2": 1 - noise},
                                    run_id=run_ids[version])
            promote_if_better(store, artifacts, ctx, MODEL, version, metric="rmse",
                              mode="min")
        bus.create_subscription(store, ctx, SUBSCRIPTION, TOPIC, max_attempts=1)
        for n in range(3):
            bus.publish(store, ctx, TOPIC, {"n": n, "what": "demo"})
        (first_message,) = bus.pull(store, PROJECT, SUBSCRIPTION, max_messages=1)
        bus.nack(store, PROJECT, SUBSCRIPTION, first_message.lease_token,
                 error="this handler fails on purpose")
        scheduler.create_schedule(store, ctx, SCHEDULE, cron="0 3 * * *",
                                  action={"type": "run_pipeline", "pipeline": "demo-pipeline"})
        triggers.create_trigger(store, ctx, TRIGGER, topic="model-version-registered",
                                filter={"model": MODEL},
                                action={"type": "run_pipeline", "pipeline": "demo-pipeline"})
        triggers.create_trigger(store, ctx, HOOK, topic="model-alias-moved", action={
            "type": "webhook", "url": f"https://hooks.example.com/deploy?token={SECRET}",
            "headers": {"Authorization": f"Bearer {SECRET}"}}, paused=True)
        latest = registry.get_model_version(store, PROJECT, MODEL, 2)
        produced = first.tasks["produce"].outputs["out"]
        assert latest.artifact_id is not None and produced.artifact_id is not None
        return Demo(run_ids=run_ids, pipeline_run=first, cached_run=again, failed_run=failed,
                    model_artifact=latest.artifact_id, dataset_artifact=produced.artifact_id)
    finally:
        runtime.close()
