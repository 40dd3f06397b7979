"""The HTTP server: the REST API over the same services the SDK calls in local mode."""

from shipyard.server.app import create_app

__all__ = ["create_app"]
