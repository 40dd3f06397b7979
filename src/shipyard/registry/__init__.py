"""The model registry: model versions, their packaging (``flavors``) and input signatures.

Plain functions over ``(store, artifacts, ctx, ...)``; the SDK, REST API and CLI are thin
adapters over them.
"""

from shipyard.registry._rows import DeploymentLookup
from shipyard.registry.aliases import alias_history, delete_alias, rollback, set_alias
from shipyard.registry.flavors import CustomPredictor
from shipyard.registry.loading import LoadedModel, load_model
from shipyard.registry.models import (
    AliasChange,
    ModelVersion,
    PromotionDecision,
    RegisteredModel,
)
from shipyard.registry.promotion import promote_if_better, promote_if_better_on_data
from shipyard.registry.refs import ModelRef, parse_ref
from shipyard.registry.service import (
    get_model,
    get_model_version,
    list_models,
    list_versions,
    register_model,
    resolve_ref,
    set_status,
)
from shipyard.registry.signature import Signature, infer_signature

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
