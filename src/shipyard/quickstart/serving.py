"""The quickstart's serving step: the production model on seed 002's endpoint, scoring leads.

It keeps ``lead-scoring-endpoint`` serving whatever ``production`` points at: the first
quickstart deploys it; a rerun that promoted a new version rolls the endpoint over to it
(the new version takes all the traffic, then the old one is undeployed), and a rerun that
changed nothing leaves the endpoint as it is. Then it scores a few leads, seed 002's example
lead first, the way a client would (``endpoint.predict``), and asks why (``endpoint.explain``,
Vertex's sampled Shapley: the lead's features are categorical as well as numeric), in this
process: local mode loads the deployed version through the same model cache the server's
replicas use.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shipyard.quickstart.data import FEATURES, generate_leads

if TYPE_CHECKING:
    import pandas as pd

    from shipyard.config import Settings
    from shipyard.registry import ModelVersion
    from shipyard.serving.port import ServingPort

ENDPOINT = "lead-scoring-endpoint"  # seed 002's display name (its Terraform and section 9)
# Seed 002's section 9: "Example: Get prediction for a new lead".
SEED_LEAD: dict[str, Any] = {
    "company_size": 152, "industry": "technology", "product_interest": "enterprise",
    "pages_visited": 15, "time_on_site": 320, "campaign_source": "google", "prior_contacts": 2,
}  # fmt: skip
MORE_LEADS = 3


@dataclass(frozen=True)
class ServedLeads:
    """What the serving step did: the endpoint, what it serves, and the scored leads."""

    endpoint: str
    deployed_model_id: str
    action: str  # "deployed", "rolled over from <id>" or "already serving"
    leads: list[dict[str, Any]]
    scores: list[float]
    # Per lead, each feature's attribution: how much it moved the score away from the
    # baseline's (the attributions plus the baseline add up to the score).
    attributions: list[dict[str, float]]
    baseline_score: float
    curl: str = ""  # the same request over HTTP, once ``shipyard server`` runs


def serve_production(serving: ServingPort, model: str, production: ModelVersion,
                     seed: int) -> ServedLeads:
    """Point ``ENDPOINT`` at ``production`` (deploying or rolling over) and score leads."""
    from shipyard.errors import NotFound

    try:
        endpoint = serving.get_endpoint(ENDPOINT)
    except NotFound:
        endpoint = serving.create_endpoint(
            ENDPOINT, description="lead scoring (quickstart): serves the production alias")
    wanted = f"{model}:{production.version}"
    before = [d.id for d in endpoint.deployments]
    if wanted in before:
        action = "already serving"
    else:
        # By alias, so the deployment records that it serves "production".
        serving.deploy(ENDPOINT, model, alias="production", traffic_percentage=100)
        for old in before:  # their share went to 0 when the new version took it all
            serving.undeploy(ENDPOINT, old)
        action = f"rolled over from {', '.join(before)}" if before else "deployed"
    leads = [SEED_LEAD, *sample_leads(seed)]
    answer = serving.predict(ENDPOINT, leads)
    explained = serving.explain(ENDPOINT, leads)
    found = [e["attributions"][0] for e in explained.explanations]
    return ServedLeads(endpoint=ENDPOINT, deployed_model_id=answer.deployed_model_id,
                       action=action, leads=leads,
                       scores=[float(p) for p in answer.predictions],
                       attributions=[{str(k): float(v) for k, v in
                                      a["featureAttributions"].items()} for a in found],
                       baseline_score=float(found[0]["baselineOutputValue"]))


def top_reasons(attributions: dict[str, float], count: int = 2) -> str:
    """The ``count`` features that moved a score most, signed: ``+prior_contacts
    -pages_visited``."""
    ranked = sorted(attributions.items(), key=lambda item: abs(item[1]), reverse=True)
    return " ".join(f"{'+' if value >= 0 else '-'}{name}" for name, value in ranked[:count]
                    if value != 0)


def sample_leads(seed: int) -> list[dict[str, Any]]:
    """A few generated leads as a client would send them."""
    return records(generate_leads(100, seed + 1).head(MORE_LEADS))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Leads as a client sends them: JSON objects keyed by feature, missing values null."""
    rows: list[dict[str, Any]] = []
    for record in frame[list(FEATURES)].to_dict(orient="records"):
        rows.append({str(k): _plain(v) for k, v in record.items()})
    return rows


def _plain(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # NumPy scalars
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def curl_line(settings: Settings) -> str:
    """The request that asks a running ``shipyard server`` for the seed lead's score."""
    from shipyard.config import DEFAULT_PORT

    body = json.dumps({"instances": [SEED_LEAD]}, separators=(",", ":"))
    path = f"/api/v1/projects/{settings.project}/endpoints/{ENDPOINT}:predict"
    token = f"$(grep -v '^#' {settings.credentials_path})"
    return (f"curl -s -X POST http://127.0.0.1:{DEFAULT_PORT}{path} "
            f"-H \"Authorization: Bearer {token}\" -H 'Content-Type: application/json' "
            f"-d '{body}'")
