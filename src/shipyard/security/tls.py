"""One TLS context per process for the HTTP clients Shipyard opens.

httpx builds a new SSL context for every client and loads certifi's whole CA bundle into it:
5 ms on an idle machine and over 100 ms on a busy one, paid by every CLI command, SDK
session, login and webhook call. A context is safe to share between clients and threads
once built, so each kind is built once.
"""

from __future__ import annotations

import functools
import ssl

import httpx


@functools.cache
def tls_context(*, trust_env: bool = True) -> ssl.SSLContext:
    """The verifying client context httpx would build (``SSL_CERT_FILE``/``SSL_CERT_DIR``
    are read when the first client of the process is opened, when ``trust_env``)."""
    return httpx.create_ssl_context(trust_env=trust_env)
