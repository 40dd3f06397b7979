"""The answer to an explain request (a value type, as ``models.Prediction`` is)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from shipyard.errors import InvalidArgument


class Explanation(BaseModel):
    """Vertex's explain response: ``explanations[i]["attributions"][0]`` holds
    ``baselineOutputValue``, ``instanceOutputValue``, ``featureAttributions``,
    ``outputIndex`` and ``approximationError`` for instance ``i``; ``predictions`` are the
    model's answers, and the deployed version that gave both."""

    model_config = ConfigDict(frozen=True)

    explanations: list[dict[str, Any]]
    predictions: list[Any]
    deployed_model_id: str
    model: str
    model_version: int

    @property
    def attributions(self) -> list[dict[str, Any]]:
        """Each instance's attribution dict (the first of its ``attributions``)."""
        return [item["attributions"][0] for item in self.explanations]


METHODS = ("auto", "tree_shap", "sampled_shapley")
MIN_PATHS, MAX_PATHS = 1, 50  # Vertex's range for sampled Shapley's path_count


def check_settings(method: object, path_count: object) -> None:
    """``InvalidArgument`` naming ``method`` or ``path_count`` unless both are valid (the
    same check, and message, in the client and where the attributions are computed)."""
    if method not in METHODS:
        raise InvalidArgument(f"method must be one of {list(METHODS)}, got {method!r}",
                              field="method")
    if isinstance(path_count, bool) or not isinstance(path_count, int) \
            or not MIN_PATHS <= path_count <= MAX_PATHS:
        raise InvalidArgument(f"path_count must be a whole number from {MIN_PATHS} to "
                              f"{MAX_PATHS}, got {path_count!r}", field="path_count")


def explain_override(method: str | None, path_count: int | None) -> dict[str, Any] | None:
    """The Vertex ``explanationSpecOverride`` asking for ``method`` and ``path_count``
    (None when neither is given: the deployment's own settings apply). Vertex's
    ``sampledShapleyAttribution`` names sampled Shapley; ``treeShapAttribution`` (ours)
    TreeSHAP; neither, ``auto``."""
    if method is None and path_count is None:
        return None
    check_settings(method or "auto", 10 if path_count is None else path_count)
    shapley: dict[str, Any] = {} if path_count is None else {"pathCount": path_count}
    if method == "sampled_shapley":
        params: dict[str, Any] = {"sampledShapleyAttribution": shapley}
    elif method == "tree_shap":
        params = {"treeShapAttribution": {}}
    else:
        params = {"autoAttribution": shapley}
    return {"parameters": params}


def parse_override(override: Any) -> tuple[str | None, int | None]:
    """``(method, path_count)`` from an ``explanationSpecOverride`` (None: not given), the
    inverse of ``explain_override``; ``InvalidArgument`` naming the field otherwise."""
    field = "explanationSpecOverride"
    if override is None:
        return None, None
    params = override.get("parameters") if isinstance(override, dict) else None
    if not isinstance(params, dict) or len(params) != 1:
        raise InvalidArgument(f"{field}.parameters must hold one of sampledShapleyAttribution, "
                              "treeShapAttribution or autoAttribution", field=f"{field}.parameters")
    (key, value), = params.items()
    method = _OVERRIDE_METHODS.get(key)
    if method is None or not isinstance(value, dict):
        raise InvalidArgument(f"{field}.parameters: unknown attribution method {key[:64]!r}: "
                              f"use one of {sorted(_OVERRIDE_METHODS)}",
                              field=f"{field}.parameters.{key[:64]}")
    count = value.get("pathCount")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int)):
        raise InvalidArgument(f"{field}: pathCount must be a whole number, got {count!r}",
                              field=f"{field}.parameters.{key}.pathCount")
    return method, count


_OVERRIDE_METHODS = {"sampledShapleyAttribution": "sampled_shapley",
                     "treeShapAttribution": "tree_shap", "autoAttribution": "auto"}
