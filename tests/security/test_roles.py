"""The role ladder viewer < user < editor < manager, and the server-wide admin."""

from __future__ import annotations

import itertools

import pytest

from shipyard.errors import InvalidArgument
from shipyard.security.roles import (
    PROJECT_ROLES,
    Permission,
    Role,
    highest_role,
    parse_role,
    role_allows,
)

R, RUN, PRE, W, D, G, A = (
    Permission.READ,
    Permission.RUN,
    Permission.PREDICT,
    Permission.WRITE,
    Permission.DELETE,
    Permission.GRANT,
    Permission.ADMIN,
)
# The whole matrix, spelled out: a change to the role table must change this test too.
MATRIX: dict[Role | None, set[Permission]] = {
    None: set(),
    Role.VIEWER: {R},
    Role.USER: {R, RUN, PRE},
    Role.EDITOR: {R, RUN, PRE, W},
    Role.MANAGER: {R, RUN, PRE, W, D, G},
    Role.ADMIN: {R, RUN, PRE, W, D, G, A},
}


@pytest.mark.parametrize("role", list(MATRIX), ids=lambda r: str(r))
@pytest.mark.parametrize("permission", list(Permission), ids=str)
def test_role_matrix(role: Role | None, permission: Permission) -> None:
    assert role_allows(role, permission) is (permission in MATRIX[role])


def test_roles_are_ordered_and_include_lower_ones() -> None:
    ladder = [Role.VIEWER, Role.USER, Role.EDITOR, Role.MANAGER, Role.ADMIN]
    assert [r.rank for r in ladder] == [0, 1, 2, 3, 4]
    for low, high in itertools.pairwise(ladder):
        assert high.includes(low) and not low.includes(high)
    assert highest_role([Role.USER, Role.MANAGER, Role.VIEWER]) is Role.MANAGER
    assert highest_role([]) is None


def test_admin_is_not_a_project_role() -> None:
    assert Role.ADMIN not in PROJECT_ROLES
    assert parse_role(" Editor ", project=True) is Role.EDITOR
    assert parse_role("admin") is Role.ADMIN
    with pytest.raises(InvalidArgument, match="viewer, user, editor, manager"):
        parse_role("admin", project=True)
    with pytest.raises(InvalidArgument):
        parse_role(3)
