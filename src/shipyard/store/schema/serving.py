"""The serving capability's tables: endpoints and the model versions deployed to them.

They hold the desired state only (which versions an endpoint serves and its traffic
split); replica processes are started from it by whichever server serves the endpoint.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from shipyard.store.schema.base import ID, NAME, metadata
from shipyard.store.types import UTCDateTime

endpoints = Table(
    "endpoints",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("project", String(NAME), nullable=False),
    Column("name", String(NAME), nullable=False),
    Column("description", Text, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    UniqueConstraint("project", "name"),
)

endpoint_deployments = Table(
    "endpoint_deployments",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("endpoint_id", String(ID), ForeignKey("endpoints.id"), nullable=False),
    # The registry's model id, which its deployment lookup is asked by.
    Column("model_id", String(ID), nullable=False),
    Column("model_name", String(NAME), nullable=False),
    Column("version", Integer, nullable=False),
    Column("version_id", String(ID), nullable=False),
    # The alias the version was chosen by, if it was; with follow_alias, the deployment
    # moves to the alias's new version when the registry moves the alias.
    Column("alias", String(NAME), nullable=True),
    Column("follow_alias", Boolean, nullable=False, server_default=false()),
    # A shadow gets a copy of the endpoint's requests; its answers are logged, never
    # returned (its traffic is always 0).
    Column("shadow", Boolean, nullable=False, server_default=false()),
    # Where its replicas run: "local" (replica processes of the server) or "ray" (a Ray
    # Serve application on the cluster RAY_ADDRESS names, behind the server's routes).
    Column("runtime", String(16), nullable=False, server_default="local"),
    Column("traffic", Integer, nullable=False),
    Column("min_replicas", Integer, nullable=False),
    Column("max_replicas", Integer, nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("created_by", String(NAME), nullable=True),
    UniqueConstraint("endpoint_id", "model_name", "version"),
    Index("ix_endpoint_deployments_model_id", "model_id"),
)
