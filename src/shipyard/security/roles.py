"""Roles and permissions: who may do what in a project.

A project role is one of ``viewer < user < editor < manager``; each role holds every
permission of the roles below it. ``admin`` is server-wide and holds every permission in
every project. The table below is the single source of truth; the server's route policy
names a :class:`Permission` per route and asks :func:`role_allows`.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from shipyard.errors import InvalidArgument

__all__ = [
    "PROJECT_ROLES",
    "ROLE_PERMISSIONS",
    "Permission",
    "Role",
    "highest_role",
    "parse_role",
    "role_allows",
]


class Permission(StrEnum):
    """One thing a request may need. Values are stable strings used in the API and audit log."""

    READ = "read"  # list and get anything in the project
    RUN = "run"  # start pipeline runs and jobs
    PREDICT = "predict"  # call prediction routes
    WRITE = "write"  # create and change resources
    DELETE = "delete"  # delete resources
    GRANT = "grant"  # give and take project roles
    ADMIN = "admin"  # server-wide: users, projects, server settings


class Role(StrEnum):
    """A project role, or the server-wide ``admin``. Ordered: compare with :attr:`rank`."""

    VIEWER = "viewer"
    USER = "user"
    EDITOR = "editor"
    MANAGER = "manager"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """0 for ``viewer`` up to 4 for ``admin``; a higher rank holds every lower permission."""
        return _ORDER.index(self)

    def includes(self, other: Role) -> bool:
        """True if this role holds every permission ``other`` holds."""
        return self.rank >= other.rank


_ORDER: tuple[Role, ...] = (Role.VIEWER, Role.USER, Role.EDITOR, Role.MANAGER, Role.ADMIN)

# Roles a grant on a project may name; ``admin`` is given to a principal, not per project.
PROJECT_ROLES: tuple[Role, ...] = _ORDER[:-1]

_ADDED: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({Permission.READ}),
    Role.USER: frozenset({Permission.RUN, Permission.PREDICT}),
    Role.EDITOR: frozenset({Permission.WRITE}),
    Role.MANAGER: frozenset({Permission.DELETE, Permission.GRANT}),
    Role.ADMIN: frozenset({Permission.ADMIN}),
}


def _cumulative() -> dict[Role, frozenset[Permission]]:
    table: dict[Role, frozenset[Permission]] = {}
    held: frozenset[Permission] = frozenset()
    for role in _ORDER:
        held = held | _ADDED[role]
        table[role] = held
    return table


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = _cumulative()
"""Every permission each role holds (cumulative up the ladder)."""


def role_allows(role: Role | None, permission: Permission) -> bool:
    """True if ``role`` holds ``permission``. ``None`` (no grant at all) allows nothing."""
    if role is None:
        return False
    return permission in ROLE_PERMISSIONS[role]


def parse_role(value: object, *, field: str = "role", project: bool = False) -> Role:
    """Parse a role name, case-insensitively.

    With ``project=True`` only the per-project roles are accepted (``admin`` is not a grant).
    Raises ``InvalidArgument`` naming ``field`` and listing the valid choices.
    """
    choices = PROJECT_ROLES if project else _ORDER
    if isinstance(value, Role) and value in choices:
        return value
    if isinstance(value, str):
        name = value.strip().lower()
        for role in choices:
            if role.value == name:
                return role
    shown = repr(value[:40]) if isinstance(value, str) else type(value).__name__
    raise InvalidArgument(
        f"{field} {shown} is not a valid role: choose one of "
        + ", ".join(r.value for r in choices),
        field=field,
    )


def highest_role(roles: Iterable[Role]) -> Role | None:
    """The strongest of ``roles`` (e.g. a direct grant and a group grant), or ``None``."""
    best: Role | None = None
    for role in roles:
        if best is None or role.rank > best.rank:
            best = role
    return best
