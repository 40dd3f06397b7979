"""A synthetic lead dataset with seed 002's columns, generated in a few vectorised calls.

Each row is a sales lead: firmographics (``company_size``, ``industry``), behaviour on the
website (``pages_visited``, ``time_on_site``), how the lead arrived (``campaign_source``),
what it asked about (``product_interest``) and how often sales already talked to it
(``prior_contacts``). The target, ``conversion_probability``, comes from a known logit with
non-linear terms and interactions plus noise, so a boosted-tree model has something real to
learn and a linear model would leave error on the table.

The generator is deterministic for a given ``(rows, seed)``: the same arguments give the same
bytes, which is what lets the pipeline's cache recognise a rerun.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

TARGET = "conversion_probability"
NUMERIC = ("company_size", "pages_visited", "time_on_site", "prior_contacts")
CATEGORICAL = ("industry", "product_interest", "campaign_source")
FEATURES = (
    "company_size",
    "industry",
    "product_interest",
    "pages_visited",
    "time_on_site",
    "campaign_source",
    "prior_contacts",
)
DEFAULT_ROWS = 40_000
DEFAULT_SEED = 2
# Bumped whenever the generator changes what it draws: the pipeline passes it to the ingest
# step, so a changed generator is a cache miss instead of stale cached leads.
DATA_VERSION = "1"
MAX_ROWS = 5_000_000
# numpy takes any non-negative seed; 32 bits is the range people know from other tools, and
# keeps the seed a small integer wherever it is stored (pipeline arguments, cache keys).
MAX_SEED = 2**32 - 1
# The retrained model's canary answers this many requests before its verdict (after_requests).
CANARY_REQUESTS = 20

# Level -> (share of leads, effect on the conversion logit). The shares are what a B2B
# funnel typically looks like: many small "other" leads, few enterprise ones.
INDUSTRIES = {
    "technology": (0.26, 0.45), "finance": (0.14, 0.30), "healthcare": (0.12, 0.10),
    "retail": (0.16, -0.20), "manufacturing": (0.12, 0.05), "education": (0.08, -0.35),
    "other": (0.12, -0.25),
}  # fmt: skip
PRODUCTS = {
    "enterprise": (0.18, 0.55), "professional": (0.34, 0.20), "starter": (0.38, -0.30),
    "api": (0.10, 0.10),
}  # fmt: skip
SOURCES = {
    "google": (0.30, 0.05), "linkedin": (0.18, 0.25), "email": (0.16, 0.15),
    "referral": (0.08, 0.80), "organic": (0.14, 0.20), "facebook": (0.09, -0.40),
    "event": (0.05, 0.45),
}  # fmt: skip
# Share of values lost per column: forms are skipped and tracking is blocked in real funnels.
MISSING = {"company_size": 0.04, "industry": 0.03, "product_interest": 0.05,
           "time_on_site": 0.06}  # fmt: skip
# The new marketing campaign (the drift the quickstart's monitor finds and the closed loop
# retrains on): Facebook ads aimed at small companies, whose landing page converts far
# better than Facebook leads used to. Its leads' companies are a quarter of the usual size,
# and their conversion logit gets ``CAMPAIGN_LIFT`` on top of the Facebook effect: a model
# trained before the campaign underrates them, one trained on fresh leads does not.
CAMPAIGN_SOURCE = "facebook"
CAMPAIGN_SIZE_FACTOR = 0.25
CAMPAIGN_LIFT = 1.2


def _draw(
    rng: np.random.Generator, levels: dict[str, tuple[float, float]], rows: int
) -> tuple[np.ndarray, np.ndarray]:
    """Category labels and their logit effects, drawn with the configured shares."""
    import numpy as np

    names = np.array(list(levels))
    shares = np.array([s for s, _ in levels.values()])
    effects = np.array([e for _, e in levels.values()])
    index = rng.choice(len(names), size=rows, p=shares / shares.sum())
    return names[index], effects[index]


def generate_leads(rows: int = DEFAULT_ROWS, seed: int = DEFAULT_SEED, *,
                   campaign: float = 0.0) -> pd.DataFrame:
    """``rows`` synthetic leads, reproducible from ``seed``; columns are ``FEATURES`` then
    ``TARGET``. Numeric columns with gaps are float64 with NaN, categorical ones object
    with None, as they would come back from a CSV or a warehouse query.

    ``campaign``: the share of leads (0 to 1) that come from the new campaign (see
    ``CAMPAIGN_LIFT``): fresh leads, after the campaign started. With 0 the leads are
    exactly those of earlier versions (the campaign draws from its own generator)."""
    # Imported here so that the CLI can read the defaults above without loading numpy.
    import numpy as np
    import pandas as pd

    if not 1 <= rows <= MAX_ROWS:
        raise ValueError(f"rows must be between 1 and {MAX_ROWS}, not {rows}")
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be between 0 and {MAX_SEED}, not {seed}")
    if isinstance(campaign, bool) or not 0.0 <= campaign <= 1.0:
        raise ValueError(f"campaign must be a share between 0 and 1, not {campaign}")
    rng = np.random.default_rng(seed)
    industry, industry_fx = _draw(rng, INDUSTRIES, rows)
    product, product_fx = _draw(rng, PRODUCTS, rows)
    source, source_fx = _draw(rng, SOURCES, rows)
    # Drawn from a generator of its own, so the other columns stay what they were.
    from_campaign = np.random.default_rng([seed, 7]).random(rows) < campaign
    source = np.where(from_campaign, CAMPAIGN_SOURCE, source)
    source_fx = np.where(from_campaign, SOURCES[CAMPAIGN_SOURCE][1] + CAMPAIGN_LIFT,
                         source_fx)

    # Company sizes are heavy-tailed (a few very large accounts); enterprise interest
    # comes more often from larger companies, which the interaction term below rewards.
    log_size = rng.normal(4.6, 1.4, rows) + np.where(product == "enterprise", 0.9, 0.0)
    log_size += np.where(from_campaign, np.log(CAMPAIGN_SIZE_FACTOR), 0.0)
    company_size = np.clip(np.exp(log_size), 1, 100_000).round()
    # Engagement: visits per lead are over-dispersed (gamma-Poisson); time on site grows
    # with pages but not linearly, and varies a lot between visitors.
    engagement = rng.gamma(2.0, 1.0, rows)
    pages = 1 + rng.poisson(3.5 * engagement)
    time_on_site = np.round(np.exp(rng.normal(3.2, 0.6, rows)) * np.sqrt(pages) * 8, 1)
    prior_contacts = rng.poisson(1.3, rows)

    logit = (
        -2.4
        + industry_fx + product_fx + source_fx
        + 0.22 * (np.log(company_size) - 4.6)
        + 1.1 * np.tanh((pages - 4) / 6)  # saturating: the 40th page adds little
        + 0.35 * (np.log1p(time_on_site) - 6.0)
        # A few touches help, many mean the lead is stalling.
        + 0.45 * np.minimum(prior_contacts, 3) - 0.30 * np.maximum(prior_contacts - 3, 0)
        + np.where((product == "enterprise") & (company_size > 500), 0.7, 0.0)
        + np.where((source == "referral") & (prior_contacts > 0), 0.35, 0.0)
        + rng.normal(0.0, 0.35, rows)
    )  # fmt: skip
    target = np.round(1.0 / (1.0 + np.exp(-logit)), 4)

    frame = pd.DataFrame({
        "company_size": company_size.astype("float64"),
        "industry": industry.astype(object),
        "product_interest": product.astype(object),
        "pages_visited": pages.astype("int64"),
        "time_on_site": time_on_site.astype("float64"),
        "campaign_source": source.astype(object),
        "prior_contacts": prior_contacts.astype("int64"),
        TARGET: target,
    })  # fmt: skip
    # Gaps are drawn after the target: the lead's true values drive conversion, only the
    # recorded features are incomplete.
    for column, share in MISSING.items():
        lost = rng.random(rows) < share
        frame.loc[lost, column] = None if frame[column].dtype == object else np.nan
    return frame
