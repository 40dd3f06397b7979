"""A database written by an older release is upgraded in place, its rows intact (as
Dagster's compat tests do): build it at revision 0001 with that release's schema, fill it
with plain SQL as that release wrote it, upgrade with the project's own ``upgrade()``, and
read it back through today's services."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select, text

from shipyard import audit
from shipyard.context import RequestContext
from shipyard.pipelines import get_pipeline_run
from shipyard.pipelines.queue import _claim, recover_lost_runs
from shipyard.security import authn
from shipyard.security.tokens import new_token
from shipyard.store import Store, open_store
from shipyard.store.migrate import current_revision, head_revision, upgrade
from shipyard.store.schema import audit_log, pipeline_runs, tokens
from shipyard.tracking import service as tracking

EXP, RUN, PRINCIPAL = "e" * 32, "a" * 32, "b" * 32
DONE, QUEUED, RUNNING = "d" * 32, "c" * 32, "f" * 32


@pytest.fixture
def old_store(store_uri: str) -> Iterator[Store]:
    store = open_store(store_uri, migrate=False, cached=False)
    try:
        upgrade(store, "0001")
        yield store
    finally:
        store.dispose()


def _fill_as_release_0001(store: Store, token_id: str, token_hash: str) -> None:
    # Timestamps as each database stored them then (SQLite: naive UTC text).
    at = ("'2026-11-24 09:00:00.000000'" if store.is_sqlite
          else "'2026-11-24 09:00:00+00'")
    spec = '{"pipelineInfo": {"name": "old"}, "root": {}}'
    statements = [
        f"INSERT INTO projects (name, created_at) VALUES ('lead', {at})",
        "INSERT INTO principals (id, name, kind, password_hash, is_admin, disabled, created_at)"
        f" VALUES ('{PRINCIPAL}', 'alice', 'user', NULL, FALSE, FALSE, {at})",
        "INSERT INTO tokens (id, principal_id, name, hash, scopes, created_at, expires_at,"
        f" revoked_at) VALUES ('{token_id}', '{PRINCIPAL}', 'laptop', '{token_hash}',"
        f" '[\"read\"]', {at}, NULL, NULL)",
        "INSERT INTO grants (principal_id, project, role, created_at)"
        f" VALUES ('{PRINCIPAL}', 'lead', 'editor', {at})",
        "INSERT INTO experiments (id, project, name, created_at, context_id)"
        f" VALUES ('{EXP}', 'lead', 'baseline', {at}, NULL)",
        "INSERT INTO runs (id, project, experiment_id, name, status, start_time, end_time,"
        f" execution_id, created_by) VALUES ('{RUN}', 'lead', '{EXP}', 'first', 'FINISHED',"
        f" {at}, {at}, NULL, 'alice')",
        f"INSERT INTO run_params (run_id, key, value) VALUES ('{RUN}', 'max_depth', '6')",
        f"INSERT INTO run_tags (run_id, key, value) VALUES ('{RUN}', 'team', 'growth')",
        "INSERT INTO run_metrics (run_id, key, step, timestamp, value) VALUES"
        f" ('{RUN}', 'rmse', 0, 1764000000000, 0.5), ('{RUN}', 'rmse', 1, 1764000001000, 0.25)",
        "INSERT INTO run_latest_metrics (run_id, key, step, timestamp, value)"
        f" VALUES ('{RUN}', 'rmse', 1, 1764000001000, 0.25)",
        "INSERT INTO pipeline_runs (id, project, pipeline_name, state, spec, arguments, options,"
        " context_id, error, created_at, started_at, finished_at, claimed_by, heartbeat_at,"
        f" retry_of) VALUES ('{DONE}', 'lead', 'old', 'SUCCEEDED', '{spec}', '{{\"rows\": 5}}',"
        f" '{{}}', NULL, NULL, {at}, {at}, {at}, 'worker-1', {at}, NULL),"
        f" ('{QUEUED}', 'lead', 'old', 'QUEUED', '{spec}', '{{}}', '{{}}', NULL, NULL, {at},"
        " NULL, NULL, NULL, NULL, NULL),"
        # Claimed by a worker of that release that died: one heartbeat, at its claim.
        f" ('{RUNNING}', 'lead', 'old', 'RUNNING', '{spec}', '{{}}', '{{}}', NULL, NULL, {at},"
        f" {at}, NULL, 'worker-1', {at}, NULL)",
        "INSERT INTO pipeline_tasks (run_id, name, state, cached, cache_key, execution_id,"
        " outputs, error, log_digest, attempts, started_at, finished_at) VALUES"
        f" ('{DONE}', 'train', 'SUCCEEDED', FALSE, NULL, NULL,"
        " '{\"Output\": {\"value\": 42}}', NULL,"
        f" NULL, 1, {at}, {at})",
        "INSERT INTO audit_log (time, actor, token_id, action, resource, project, outcome,"
        f" request_id, client, detail) VALUES ({at}, 'alice', '{token_id}', 'runs.create',"
        f" 'runs/{RUN}', 'lead', 'ok', 'req-1', '127.0.0.1', NULL),"
        f" ({at}, 'alice', NULL, 'POST /api/v1/login', '/api/v1/login', NULL, 'denied',"
        " 'req-2', NULL, '{\"reason\": \"bad password\"}')",
    ]
    with store.write() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_a_release_0001_database_upgrades_with_its_rows(old_store: Store) -> None:
    store = old_store
    assert current_revision(store) == "0001"
    token = new_token()
    _fill_as_release_0001(store, token.lookup, token.hash)

    upgrade(store)
    assert current_revision(store) == head_revision() != "0001"

    # The rows survive, read through today's services.
    run = tracking.get_run(store, "lead", RUN)
    assert (run.name, run.experiment, run.status) == ("first", "baseline", "FINISHED")
    assert run.params == {"max_depth": "6"} and run.tags == {"team": "growth"}
    assert run.metrics == {"rmse": 0.25}
    assert [p.value for p in tracking.metric_history(store, "lead", RUN, "rmse")] == [0.5, 0.25]
    assert run.start_time.tzinfo is not None and run.start_time.hour == 9
    principal = authn.authenticate(store, token.plaintext)
    assert principal.name == "alice" and not principal.is_admin
    done = get_pipeline_run(store, "lead", DONE)
    assert done.state == "SUCCEEDED" and done.tasks["train"].outputs == {"Output": 42}

    # Columns added since 0001 take their defaults on old rows.
    with store.read() as conn:
        assert conn.execute(select(tokens.c.project)).scalar_one() is None
        assert set(conn.execute(select(pipeline_runs.c.principal)).scalars()) == {None}
        assert set(conn.execute(select(audit_log.c.hash)).scalars()) == {None}
        assert set(conn.execute(select(pipeline_runs.c.lease_until)).scalars()) == {None}
        assert set(conn.execute(select(pipeline_runs.c.recoveries)).scalars()) == {0}
    # A queued run left by the old release is still claimed, and runs in local mode
    # (no submitting principal).
    assert _claim(store, "new-worker", None) == (QUEUED, "lead")
    assert get_pipeline_run(store, "lead", QUEUED).principal is None
    # A run its dead worker of that release left RUNNING has no lease: it is judged by
    # its last heartbeat, and re-queued.
    [recovered] = recover_lost_runs(store, "new-worker")
    assert (recovered.id, recovered.state, recovered.claimed_by) == (RUNNING, "QUEUED", None)
    assert recovered.error is not None and "worker-1 stopped heartbeating" in recovered.error

    # The audit chain starts after the old, unchained rows, and verifies.
    with store.write() as conn:
        audit.record(conn, RequestContext(project="lead", actor="alice"), "runs.tag", "x")
    verified = audit.verify(store)
    # The old rows, the recovery's and this one.
    assert verified.ok and verified.rows == 4 and verified.unchained == 2
