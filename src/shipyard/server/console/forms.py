"""Reading the console's forms: a posted form's text fields, bounded and named in errors
(``InvalidArgument`` naming the field, answered as a page saying what was wrong), after
its CSRF token was checked."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request

from shipyard.errors import InvalidArgument
from shipyard.server.console.session import check_csrf, read_form

__all__ = ["checked_form", "json_field", "text"]

MAX_JSON = 64 * 1024  # characters of a JSON field (an action, a filter)


async def checked_form(request: Request) -> FormData:
    """The posted form, once its CSRF token is this session's."""
    form = await read_form(request)
    check_csrf(request, form)
    return form


def text(form: FormData, name: str, *, max_length: int = 256, required: bool = True,
         default: str = "") -> str:
    """A text field, stripped; ``default`` when empty and not required."""
    value = form.get(name)
    found = value.strip() if isinstance(value, str) else ""
    if not found:
        if required:
            raise InvalidArgument(f"fill in {name.replace('_', ' ')}", field=name)
        return default
    if len(found) > max_length:
        raise InvalidArgument(f"{name} is at most {max_length} characters", field=name)
    return found


def json_field(form: FormData, name: str, *, required: bool = True) -> Any:
    """A field holding JSON (an object), parsed; None when empty and not required."""
    found = text(form, name, max_length=MAX_JSON, required=required)
    if not found:
        return None
    try:
        parsed = json.loads(found)
    except ValueError as exc:
        raise InvalidArgument(f"{name} is not JSON: {exc}", field=name) from None
    if not isinstance(parsed, dict):
        raise InvalidArgument(f"{name} must be a JSON object", field=name)
    return parsed
