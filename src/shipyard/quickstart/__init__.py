"""The built-in demo scenario (seed 002's lead scoring) and its data generator.

``run_quickstart`` is what ``shipyard quickstart`` calls; ``generate_leads`` makes the data
and ``pipeline.lead_scoring`` is the pipeline. Submodules are imported on first use so that
``import shipyard.quickstart`` stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shipyard.quickstart.data import generate_leads
    from shipyard.quickstart.run import QuickstartResult, run_quickstart

__all__ = ["QuickstartResult", "generate_leads", "run_quickstart"]
_EXPORTS = {"generate_leads": "data", "QuickstartResult": "run", "run_quickstart": "run"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'shipyard.quickstart' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"shipyard.quickstart.{module}"), name)
