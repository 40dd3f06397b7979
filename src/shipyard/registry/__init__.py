"""The model registry: model versions, their packaging (``flavors``) and input signatures.

Plain functions over ``(store, artifacts, ctx, ...)``; the SDK, REST API and CLI are thin
adapters over them. Attributes are imported on first use, so the HTTP client (which needs
only ``models``, ``flavors`` and the model cache) never loads the store-backed services.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.registry._rows import DeploymentLookup as DeploymentLookup
    from shipyard.registry.aliases import (
        alias_history as alias_history,
    )
    from shipyard.registry.aliases import (
        delete_alias as delete_alias,
    )
    from shipyard.registry.aliases import (
        rollback as rollback,
    )
    from shipyard.registry.aliases import (
        set_alias as set_alias,
    )
    from shipyard.registry.flavors import CustomPredictor as CustomPredictor
    from shipyard.registry.loaded import LoadedModel as LoadedModel
    from shipyard.registry.loading import load_model as load_model
    from shipyard.registry.models import (
        AliasChange as AliasChange,
    )
    from shipyard.registry.models import (
        ModelVersion as ModelVersion,
    )
    from shipyard.registry.models import (
        PromotionDecision as PromotionDecision,
    )
    from shipyard.registry.models import (
        RegisteredModel as RegisteredModel,
    )
    from shipyard.registry.promotion import (
        promote_if_better as promote_if_better,
    )
    from shipyard.registry.promotion import (
        promote_if_better_on_data as promote_if_better_on_data,
    )
    from shipyard.registry.refs import (
        ModelRef as ModelRef,
    )
    from shipyard.registry.refs import (
        parse_ref as parse_ref,
    )
    from shipyard.registry.service import (
        get_model as get_model,
    )
    from shipyard.registry.service import (
        get_model_version as get_model_version,
    )
    from shipyard.registry.service import (
        list_models as list_models,
    )
    from shipyard.registry.service import (
        list_versions as list_versions,
    )
    from shipyard.registry.service import (
        register_model as register_model,
    )
    from shipyard.registry.service import (
        resolve_ref as resolve_ref,
    )
    from shipyard.registry.service import (
        set_status as set_status,
    )
    from shipyard.registry.signature import (
        Signature as Signature,
    )
    from shipyard.registry.signature import (
        infer_signature as infer_signature,
    )

_EXPORTS = {
    "DeploymentLookup": "_rows",
    "alias_history": "aliases",
    "delete_alias": "aliases",
    "rollback": "aliases",
    "set_alias": "aliases",
    "CustomPredictor": "flavors",
    "LoadedModel": "loaded",
    "load_model": "loading",
    "AliasChange": "models",
    "ModelVersion": "models",
    "PromotionDecision": "models",
    "RegisteredModel": "models",
    "promote_if_better": "promotion",
    "promote_if_better_on_data": "promotion",
    "ModelRef": "refs",
    "parse_ref": "refs",
    "get_model": "service",
    "get_model_version": "service",
    "list_models": "service",
    "list_versions": "service",
    "register_model": "service",
    "resolve_ref": "service",
    "set_status": "service",
    "Signature": "signature",
    "infer_signature": "signature",
}

__all__ = [
    "AliasChange",
    "CustomPredictor",
    "DeploymentLookup",
    "LoadedModel",
    "ModelRef",
    "ModelVersion",
    "PromotionDecision",
    "RegisteredModel",
    "Signature",
    "alias_history",
    "delete_alias",
    "get_model",
    "get_model_version",
    "infer_signature",
    "list_models",
    "list_versions",
    "load_model",
    "parse_ref",
    "promote_if_better",
    "promote_if_better_on_data",
    "register_model",
    "resolve_ref",
    "rollback",
    "set_alias",
    "set_status",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.registry' has no attribute {name!r}")
    return getattr(importlib.import_module(f"shipyard.registry.{module}"), name)
