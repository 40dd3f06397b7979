"""Remote mode: the same interface as local mode, over HTTP to a Shipyard server."""

from shipyard.client.http import HttpBackend

__all__ = ["HttpBackend"]
