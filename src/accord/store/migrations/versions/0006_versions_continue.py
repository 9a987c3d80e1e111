"""PostgreSQL: a key deleted and written again continues its version sequence instead of restarting at 1.

A version names one value of a key for ever (rollback --to-version, compare-and-set), so after a
delete the next put takes the version after the delete's, read from the key's history. The
compare-and-set still compares against the live row (0 when the key is absent).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import importlib

from alembic import op

from accord.store.dialect import uses_put_function

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PUT_MANY = """
CREATE OR REPLACE FUNCTION accord_put_many(
    p_keys text[], p_values bytea[], p_expect bigint[], p_secret boolean[],
    p_actor text, p_action text, p_request_id text)
RETURNS TABLE(o_revision bigint, o_version bigint, o_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    rev bigint;
    current_version bigint;
    last_version bigint;
    now_ts timestamptz := clock_timestamp();
BEGIN
    FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
        UPDATE accord_meta SET value = value + 1 WHERE name = 'revision' RETURNING value INTO rev;
        SELECT version INTO current_version FROM accord_kv WHERE key = p_keys[i] FOR UPDATE;
        IF current_version IS NULL THEN
            SELECT max(version) INTO last_version FROM accord_kv_history WHERE key = p_keys[i];
        ELSE
            last_version := current_version;
        END IF;
        IF p_expect[i] IS NOT NULL AND p_expect[i] <> coalesce(current_version, 0) THEN
            RAISE EXCEPTION USING ERRCODE = 'AC409', MESSAGE = 'accord conflict',
                DETAIL = p_keys[i], HINT = coalesce(current_version, 0)::text || ' ' || p_expect[i]::text;
        END IF;
        IF current_version IS NULL THEN
            INSERT INTO accord_kv
                (key, value, flags, create_revision, mod_revision, version, secret, updated_at, updated_by)
            VALUES (p_keys[i], p_values[i], 0, rev, rev, coalesce(last_version, 0) + 1, p_secret[i], now_ts, p_actor);
        ELSE
            UPDATE accord_kv SET value = p_values[i], mod_revision = rev, version = last_version + 1,
                secret = p_secret[i], updated_at = now_ts, updated_by = p_actor
            WHERE key = p_keys[i];
        END IF;
        INSERT INTO accord_kv_history (revision, key, op, value, version, secret, actor, at, action, request_id)
        VALUES (rev, p_keys[i], 'put', p_values[i], coalesce(last_version, 0) + 1, p_secret[i], p_actor, now_ts,
                p_action, p_request_id);
        o_revision := rev;
        o_version := coalesce(last_version, 0) + 1;
        o_at := now_ts;
        RETURN NEXT;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    if uses_put_function(op.get_bind()):
        op.execute(PUT_MANY)


def downgrade() -> None:
    if uses_put_function(op.get_bind()):
        op.execute(importlib.import_module("accord.store.migrations.versions.0004_pg_put_function").PUT_MANY)
