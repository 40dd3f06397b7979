"""The security suite runs under the same tripwire as the server suite (DESIGN.md 6)."""

from __future__ import annotations

from tests.server.conftest import no_unpickling, server_tripwire

__all__ = ["no_unpickling", "server_tripwire"]
