"""The audit log from the SDK (re-exported as ``shipyard.*``)."""

from __future__ import annotations

from shipyard.sdk import session
from shipyard.security.models import AuditEvent, AuditVerification


def list_audit_events(actor: str | None = None, action: str | None = None,
                      outcome: str | None = None, limit: int = 100) -> list[AuditEvent]:
    """The project's audit log, newest first (remote mode needs the manager role)."""
    return session.current().identity.audit_events(actor=actor, action=action,
                                                   outcome=outcome, limit=limit)


def verify_audit_log() -> AuditVerification:
    """Recompute the whole audit log's hash chain; ``.ok`` is False and ``.broken_at`` names
    the first row that no longer fits when a row was deleted or edited (remote mode needs
    an admin)."""
    return session.current().identity.verify_audit()
