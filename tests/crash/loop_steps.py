"""The tiny retraining pipeline of the closed-loop crash test: one step that registers a
new version of ``lead`` for an alert, once (the version carries the alert as a label, and
the look-up-then-register runs under a lock the kernel drops when its holder dies: a step
left running by a killed worker and the re-run step cannot both register)."""

from __future__ import annotations

from shipyard import dsl


@dsl.component
def retrain(alert: str, lock_dir: str) -> int:
    import fcntl

    import pandas as pd
    from sklearn.linear_model import LinearRegression

    import shipyard as sy

    with open(f"{lock_dir}/retrain.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        found = [v for v in sy.list_model_versions("lead") if v.labels.get("alert") == alert]
        if found:
            return found[0].version
        x = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0]})
        slope = 1.0 + sum(map(ord, alert)) / 1000  # a model of its own for each alert
        version = sy.register_model("lead", LinearRegression().fit(x, x["a"] * slope),
                                    input_example=x[:2], labels={"alert": alert})
        return version.version


@dsl.pipeline(name="retrain-lead")
def retrain_lead(alert: str, lock_dir: str) -> None:
    retrain(alert=alert, lock_dir=lock_dir)
