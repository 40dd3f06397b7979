"""Sending alerts: log, webhook (HTTP POST of the alert as JSON, through the SSRF guard),
email (SMTP) and event (``monitor-alert-raised``, published in the transaction that records
the alert, so it is marked sent there).

A delivery is sent at most once: it is marked ``sending`` (in its own transaction) before a
byte leaves, then ``sent`` or ``failed``. A process that dies in between leaves it
``sending``, and it is not sent again (a receiver that got it must not get it twice). A
delivery that could not be made (the target did not answer, refused it, or the URL is not
allowed) is ``failed`` with the reason; an unreachable target is tried again on the next
pass, up to ``MAX_ATTEMPTS`` times.

Settings (``settings.extra`` or ``SHIPYARD_<KEY>``): ``outbound_allowlist`` (host names and
networks webhooks may reach, comma-separated; empty: none), ``smtp_host`` (default
localhost), ``smtp_port`` (25), ``smtp_from`` (``shipyard@<host name>``), ``smtp_starttls``
(``true``/``false``), ``smtp_user`` and ``smtp_password``.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from typing import Any

from sqlalchemy import Connection, select, update

from shipyard.config import Settings
from shipyard.errors import InvalidArgument, Unavailable
from shipyard.monitoring.models import Alert
from shipyard.store import Store
from shipyard.store.schema import monitor_alerts, monitors

__all__ = ["MAX_ATTEMPTS", "deliver_pending", "payload", "send"]

log = logging.getLogger("shipyard.monitoring.alerts")
MAX_ATTEMPTS = 3
SMTP_TIMEOUT = 10.0


def setting(extra: Mapping[str, str], key: str, default: str) -> str:
    return extra.get(key) or os.environ.get(f"SHIPYARD_{key.upper()}") or default


def payload(alert: Alert) -> dict[str, Any]:
    """What a webhook receives (and an email carries)."""
    return {"alert_id": alert.id, "project": alert.project, "monitor": alert.monitor,
            "endpoint": alert.endpoint, "kind": alert.kind, "severity": alert.severity,
            "state": alert.state, "message": alert.message, "features": alert.features,
            "model": alert.model, "model_version": alert.model_version,
            "baseline": alert.baseline_uri, "run_id": alert.run_id,
            "created_at": alert.created_at.isoformat()}


def send(channel: Mapping[str, str], alert: Alert, settings: Settings) -> None:
    """Send ``alert`` on one channel; raises ``InvalidArgument`` (refused: not retried) or
    ``Unavailable`` (not reached: retried)."""
    kind = channel["type"]
    if kind == "log":
        log.warning("alert %s (%s, %s): %s", alert.id, alert.kind, alert.severity,
                    alert.message)
    elif kind == "webhook":
        _webhook(channel["url"], alert, settings)
    elif kind == "email":
        _email(channel["to"], alert, settings)


def _webhook(url: str, alert: Alert, settings: Settings) -> None:
    from shipyard.security.ssrf import OutboundPolicy, guarded_post

    entries = [e.strip() for e in setting(settings.extra, "outbound_allowlist", "").split(",")
               if e.strip()]
    policy = OutboundPolicy.from_allowlist(entries)
    response = guarded_post(url, payload(alert), policy=policy,
                            headers={"X-Shipyard-Alert": alert.id})
    if response.status_code >= 500:
        raise Unavailable(f"the webhook answered {response.status_code}")
    if response.status_code >= 400:
        raise InvalidArgument(f"the webhook refused the alert ({response.status_code})",
                              field="url")


def _email(to: str, alert: Alert, settings: Settings) -> None:
    extra = settings.extra
    host = setting(extra, "smtp_host", "localhost")
    port = int(setting(extra, "smtp_port", "25"))
    sender = setting(extra, "smtp_from", f"shipyard@{socket.gethostname()}")
    message = EmailMessage()
    message["From"], message["To"] = sender, to
    message["Subject"] = (f"[shipyard {alert.severity}] {alert.kind} on endpoint "
                          f"{alert.endpoint} (monitor {alert.monitor})")[:200]
    message["X-Shipyard-Alert"] = alert.id
    message.set_content(alert.message + "\n\n" + json.dumps(payload(alert), indent=2))
    try:
        with smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT) as smtp:
            if setting(extra, "smtp_starttls", "false").lower() == "true":
                smtp.starttls()
            user = setting(extra, "smtp_user", "")
            if user:
                smtp.login(user, setting(extra, "smtp_password", ""))
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise InvalidArgument(f"the SMTP server refused {to}: {exc}"[:300],
                              field="alert") from None
    except (OSError, smtplib.SMTPException) as exc:
        raise Unavailable(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}"[:300]) from None


def deliver_pending(store: Store, settings: Settings, *,
                    alert_ids: Sequence[str] | None = None, limit: int = 50) -> int:
    """Send the pending deliveries of ``alert_ids`` (or of any alerts); how many were
    attempted."""
    from shipyard.monitoring.monitors import alert_of

    def claim(conn: Connection) -> list[tuple[Alert, list[int]]]:
        query = select(monitor_alerts, monitors.c.name.label("monitor_name"),
                       monitors.c.endpoint).join(
            monitors, monitors.c.id == monitor_alerts.c.monitor_id)
        if alert_ids is not None:
            query = query.where(monitor_alerts.c.id.in_(list(alert_ids)))
        else:
            query = query.where(monitor_alerts.c.state == "open")
        if conn.dialect.name != "sqlite":  # SQLite's write transaction excludes the others
            query = query.with_for_update(of=monitor_alerts)
        claimed: list[tuple[Alert, list[int]]] = []
        for row in conn.execute(query.order_by(monitor_alerts.c.created_at).limit(limit)):
            deliveries = [dict(d) for d in row.deliveries]
            due = [i for i, d in enumerate(deliveries) if d.get("state") == "pending"]
            if not due:
                continue
            for i in due:
                deliveries[i]["state"] = "sending"
                deliveries[i]["attempts"] = int(deliveries[i].get("attempts", 0)) + 1
            conn.execute(update(monitor_alerts).where(monitor_alerts.c.id == row.id)
                         .values(deliveries=deliveries))
            claimed.append((alert_of(row), due))
        return claimed

    claimed = store.retry_write(claim)
    attempted = 0
    for alert, due in claimed:
        outcome: dict[int, dict[str, Any]] = {}
        for i in due:
            channel = alert.deliveries[i]
            attempted += 1
            try:
                send(channel, alert, settings)
                outcome[i] = {"state": "sent", "error": None}
            except Unavailable as exc:
                again = int(channel.get("attempts", 0)) + 1 < MAX_ATTEMPTS
                outcome[i] = {"state": "pending" if again else "failed",
                              "error": exc.message[:300]}
            except Exception as exc:  # refused, or a bug in a channel: never retried
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                outcome[i] = {"state": "failed", "error": str(message)[:300]}
            if outcome[i]["state"] != "sent":
                log.warning("alert %s: %s delivery %s: %s", alert.id, channel["type"],
                            outcome[i]["state"], outcome[i]["error"])
        _finish(store, alert.id, outcome)
    return attempted


def _finish(store: Store, alert_id: str, outcome: Mapping[int, Mapping[str, Any]]) -> None:
    def work(conn: Connection) -> None:
        query = select(monitor_alerts.c.deliveries).where(monitor_alerts.c.id == alert_id)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return
        deliveries = [dict(d) for d in row.deliveries]
        for i, result in outcome.items():
            deliveries[i].update(result)
        conn.execute(update(monitor_alerts).where(monitor_alerts.c.id == alert_id)
                     .values(deliveries=deliveries))

    store.retry_write(work)
