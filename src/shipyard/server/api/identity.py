"""Users, tokens, grants and logins (routes are listed in server/policy.py)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["identity"])
