"""Who is asking: the small request context every mutating service call receives.

Services never check tokens (DESIGN.md 6); the server authenticates, then hands services this
context so that audit rows and alias history name the same actor, in the same transaction as
the change.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass, field

from shipyard.ids import new_id


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "local"


@dataclass(frozen=True)
class RequestContext:
    project: str
    actor: str = field(default_factory=_local_user)
    token_id: str | None = None
    request_id: str = field(default_factory=new_id)
    client: str | None = None
