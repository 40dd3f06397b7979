"""``shipyard users|tokens|grants|login``: who may do what (DESIGN.md 6)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape

from shipyard.cli import output
from shipyard.cli.state import command, configure, current, project, settings
from shipyard.sdk import identity as sdk_identity

users = typer.Typer(help="Users and service accounts.", no_args_is_help=True)
tokens = typer.Typer(help="API tokens: create (shown once), list, revoke.",
                     no_args_is_help=True)
grants = typer.Typer(help="Roles per project: viewer < user < editor < manager.",
                     no_args_is_help=True)

_WHAT = "identity management"


def register(root: typer.Typer) -> None:
    root.add_typer(users, name="users")
    root.add_typer(tokens, name="tokens")
    root.add_typer(grants, name="grants")
    root.command("login")(login)


def _identity() -> None:
    configure()  # the SDK set up from the global options first


def _print(value: Any, columns: list[str], rows: list[list[Any]], *,
           keep: tuple[str, ...] = ()) -> None:
    if current().json:
        output.print_json(value)
    else:
        output.show(output.table(None, columns, rows, keep=keep))


# -- users ---------------------------------------------------------------------------------
@users.command("create")
@command
def create_user(
    name: Annotated[str, typer.Argument(help="User or service account name")],
    service: Annotated[bool, typer.Option(
        "--service", help="A service account (tokens only, no password)")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="Server-wide administrator")] = False,
    password: Annotated[bool, typer.Option(
        "--password", help="Prompt for a console password (12+ characters)")] = False,
) -> None:
    """Create a user or service account."""
    _identity()
    secret = typer.prompt("Password", hide_input=True, confirmation_prompt=True) \
        if password else None
    info = sdk_identity.create_user(
        name, kind="service" if service else "user", password=secret, admin=admin)
    _print(info, ["name", "kind", "admin", "created"],
           [[info.name, info.kind, info.is_admin, info.created_at]], keep=("name",))


@users.command("list")
@command
def list_users() -> None:
    """List users and service accounts."""
    _identity()
    found = sdk_identity.list_users()
    _print(found, ["name", "kind", "admin", "disabled", "password", "created"],
           [[u.name, u.kind, u.is_admin, u.disabled, u.has_password, u.created_at]
            for u in found], keep=("name",))


@users.command("disable")
@command
def disable_user(name: Annotated[str, typer.Argument(help="User name")]) -> None:
    """Disable a user: its tokens stop working on the next request."""
    _identity()
    info = sdk_identity.disable_user(name)
    _print(info, ["name", "disabled"], [[info.name, info.disabled]], keep=("name",))


@users.command("enable")
@command
def enable_user(name: Annotated[str, typer.Argument(help="User name")]) -> None:
    """Enable a disabled user: its tokens that are neither revoked nor expired work again."""
    _identity()
    info = sdk_identity.enable_user(name)
    _print(info, ["name", "disabled"], [[info.name, info.disabled]], keep=("name",))


# -- tokens --------------------------------------------------------------------------------
@tokens.command("create")
@command
def create_token(
    principal: Annotated[str, typer.Argument(help="User or service account")],
    name: Annotated[str, typer.Option("--name", help="A label for the token")] = "cli",
    scope: Annotated[list[str] | None, typer.Option(
        "--scope", help="read, predict, write or admin (repeatable) (default: by role)"
    )] = None,
    expires_in_days: Annotated[int | None, typer.Option(
        "--expires-in-days", min=1, help="Expire after this many days (default: never)"
    )] = None,
) -> None:
    """Issue an API token. It is printed once and never stored in plain text."""
    _identity()
    created = sdk_identity.create_token(
        name, principal=principal, scopes=scope or None, expires_in_days=expires_in_days)
    if current().json:
        data = output.jsonable(created)
        data["plaintext"] = created.plaintext  # excluded from repr, needed by scripts
        output.print_json(data)
        return
    output.show(f"token {escape(created.id)} for {escape(created.principal)} "
                f"(expires {output.local_time(created.expires_at) or 'never'}):")
    output.show(escape(created.plaintext))
    output.note("store it now: it is not shown again")


@tokens.command("list")
@command
def list_tokens(
    principal: Annotated[str | None, typer.Option(
        "--principal", help="Only this principal's tokens")] = None,
) -> None:
    """List tokens (never their values)."""
    _identity()
    found = sdk_identity.list_tokens(principal=principal)
    _print(found, ["id", "name", "principal", "scopes", "created", "expires", "revoked"],
           [[t.id, t.name, t.principal, t.scopes, t.created_at, t.expires_at, t.revoked_at]
            for t in found], keep=("id",))


@tokens.command("revoke")
@command
def revoke_token(token_id: Annotated[str, typer.Argument(help="The token's id")]) -> None:
    """Revoke a token; it is refused from the very next request."""
    _identity()
    info = sdk_identity.revoke_token(token_id)
    if current().json:
        output.print_json(info)
    else:
        output.show(f"revoked token {escape(token_id)}")


# -- grants --------------------------------------------------------------------------------
@grants.command("add")
@command
def add_grant(
    principal: Annotated[str, typer.Argument(help="User or service account")],
    role: Annotated[str, typer.Argument(help="viewer, user, editor or manager")],
) -> None:
    """Give a principal a role in the project (replacing any role it had there)."""
    _identity()
    info = sdk_identity.grant(principal, role, project=project())
    _print(info, ["principal", "project", "role"],
           [[info.principal, info.project, info.role]])


@grants.command("list")
@command
def list_grants() -> None:
    """List who holds which role in the project."""
    _identity()
    found = sdk_identity.list_grants(project=project())
    _print(found, ["principal", "project", "role", "granted"],
           [[g.principal, g.project, g.role, g.created_at] for g in found])


@grants.command("revoke")
@command
def revoke_grant(
    principal: Annotated[str, typer.Argument(help="User or service account")],
) -> None:
    """Take away a principal's role in the project."""
    _identity()
    sdk_identity.revoke_grant(principal, project=project())
    if current().json:
        output.print_json({"principal": principal, "project": project(), "revoked": True})
    else:
        output.show(f"{escape(principal)} has no role in {escape(project())} any more")


# -- login ---------------------------------------------------------------------------------
@command
def login(
    user: Annotated[str, typer.Option("--user", "-u", prompt=True, help="User name")],
    password: Annotated[str, typer.Option(
        "--password", prompt=True, hide_input=True,
        help="Password (prompted for when not given)")],
) -> None:
    """Log in to a server with a user name and password.

    The token is saved (0600) in the Shipyard home, so later commands against that server
    (--uri or SHIPYARD_URI) use it.
    """
    _identity()
    uri = str(settings().uri)
    sdk_identity.login(uri, user, password, home=settings().home)
    if current().json:
        output.print_json({"user": user, "uri": uri, "logged_in": True})
    else:
        output.show(f"logged in to {escape(uri)} as {escape(user)}")
