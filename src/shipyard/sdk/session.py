"""The SDK's current configuration and backend (set by ``shipyard.init``)."""

from __future__ import annotations

import os
import threading
from typing import Any

from shipyard.config import Settings
from shipyard.sdk.backend import Backend

_lock = threading.Lock()
_settings: Settings | None = None
_backend: Backend | None = None


def init(
    *,
    project: str | None = None,
    uri: str | None = None,
    artifacts: str | None = None,
    home: str | os.PathLike[str] | None = None,
    token: str | None = None,
) -> Settings:
    """Configure the SDK; arguments win over ``SHIPYARD_*`` variables, which win over defaults.

    ``uri`` chooses the mode: ``sqlite:///...`` or ``postgresql+psycopg://...`` for local mode,
    ``http(s)://host:port`` for a server.
    """
    global _settings, _backend
    settings = Settings.resolve(home=home, uri=uri, artifacts=artifacts, project=project,
                                token=token)
    backend = make_backend(settings)
    with _lock:
        old, _settings, _backend = _backend, settings, backend
    _close(old)
    return settings


def make_backend(settings: Settings) -> Backend:
    if settings.remote:
        from shipyard.client import HttpBackend

        return HttpBackend(settings)
    from shipyard.config import check_store_folder
    from shipyard.sdk.local import LocalBackend

    check_store_folder(settings)
    return LocalBackend(settings)


def current() -> Backend:
    """The configured backend, configured from the environment on first use."""
    global _settings, _backend
    with _lock:
        if _backend is None:
            _settings = Settings.resolve()
            _backend = make_backend(_settings)
        return _backend


def settings() -> Settings:
    current()
    assert _settings is not None
    return _settings


def reset() -> None:
    """Forget the configuration (tests, and ``init`` with a new environment)."""
    global _settings, _backend
    with _lock:
        old, _settings, _backend = _backend, None, None
    _close(old)


def _close(backend: Any) -> None:
    close = getattr(backend, "close", None)
    if close is not None:
        close()
