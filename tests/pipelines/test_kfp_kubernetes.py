"""``from kfp import kubernetes`` after the import swap: every call is refused by name."""

from __future__ import annotations

import pytest

from shipyard import dsl, kubernetes
from shipyard.errors import InvalidArgument


@dsl.component
def noop() -> None:
    pass


def test_kubernetes_settings_are_refused_where_the_pipeline_is_defined() -> None:
    refused = r"kubernetes\.mount_pvc: Kubernetes-specific"
    with pytest.raises(InvalidArgument, match=refused) as caught:

        @dsl.pipeline(name="pvc")
        def pvc() -> None:
            kubernetes.mount_pvc(noop(), pvc_name="data", mount_path="/data")

    assert caught.value.field == "kubernetes.mount_pvc"
