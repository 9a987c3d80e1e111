"""PostgreSQL: one statement writes the puts of several callers, each caller's group all or nothing.

Concurrent writes of one process are coalesced into one transaction (docs/performance.md,
"Coalescing"). ``accord_put_many`` fails the whole statement on one compare-and-set miss, which
would fail every caller of the batch; ``accord_put_groups`` checks each group's compare-and-sets
before it writes any of the group's rows and reports a miss as a row of its own, so only that
caller gets its ConflictError and no revision is spent on it (no gap). No subtransactions: a
group is checked first and written only if every check passed.

The revision row is locked first, before any key row, as every other write transaction does
(its first statement bumps it), so the lock order is the same everywhere and writers cannot
deadlock on it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from alembic import op

from accord.store.dialect import uses_put_function

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SIGNATURE = "integer[], text[], bytea[], bigint[], boolean[], text[], text[], text[]"
PUT_GROUPS = """
CREATE OR REPLACE FUNCTION accord_put_groups(
    p_group integer[], p_keys text[], p_values bytea[], p_expect bigint[], p_secret boolean[],
    p_actor text[], p_action text[], p_request_id text[])
RETURNS TABLE(o_group integer, o_revision bigint, o_version bigint, o_at timestamptz,
              o_conflict_key text, o_actual bigint, o_expected bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n integer := coalesce(array_length(p_keys, 1), 0);
    first_i integer := 1;
    last_i integer;
    i integer;
    j integer;
    rev bigint;
    live_version bigint;
    base_version bigint;
    found_earlier boolean;
    new_versions bigint[];
    miss_key text;
    miss_actual bigint;
    miss_expected bigint;
    now_ts timestamptz := clock_timestamp();
BEGIN
    PERFORM 1 FROM accord_meta WHERE name = 'revision' FOR UPDATE;
    WHILE first_i <= n LOOP
        last_i := first_i;
        WHILE last_i < n AND p_group[last_i + 1] = p_group[first_i] LOOP
            last_i := last_i + 1;
        END LOOP;
        -- check the group: each item against the live row, or against an earlier item of its group
        new_versions := array_fill(0::bigint, ARRAY[n]);
        miss_key := NULL;
        FOR i IN first_i .. last_i LOOP
            found_earlier := false;
            FOR j IN REVERSE i - 1 .. first_i LOOP
                IF p_keys[j] = p_keys[i] THEN
                    live_version := new_versions[j];
                    base_version := new_versions[j];
                    found_earlier := true;
                    EXIT;
                END IF;
            END LOOP;
            IF NOT found_earlier THEN
                SELECT version INTO live_version FROM accord_kv WHERE key = p_keys[i] FOR UPDATE;
                IF live_version IS NULL THEN
                    SELECT max(version) INTO base_version FROM accord_kv_history WHERE key = p_keys[i];
                ELSE
                    base_version := live_version;
                END IF;
            END IF;
            IF p_expect[i] IS NOT NULL AND p_expect[i] <> coalesce(live_version, 0) THEN
                miss_key := p_keys[i];
                miss_actual := coalesce(live_version, 0);
                miss_expected := p_expect[i];
                EXIT;
            END IF;
            new_versions[i] := coalesce(base_version, 0) + 1;
        END LOOP;
        IF miss_key IS NOT NULL THEN
            o_group := p_group[first_i];
            o_revision := NULL;
            o_version := NULL;
            o_at := NULL;
            o_conflict_key := miss_key;
            o_actual := miss_actual;
            o_expected := miss_expected;
            RETURN NEXT;
        ELSE
            UPDATE accord_meta SET value = value + (last_i - first_i + 1) WHERE name = 'revision'
                RETURNING value - (last_i - first_i + 1) INTO rev;
            FOR i IN first_i .. last_i LOOP
                rev := rev + 1;
                INSERT INTO accord_kv
                    (key, value, flags, create_revision, mod_revision, version, secret, updated_at, updated_by)
                VALUES (p_keys[i], p_values[i], 0, rev, rev, new_versions[i], p_secret[i], now_ts, p_actor[i])
                ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
                    version = excluded.version, secret = excluded.secret, updated_at = excluded.updated_at,
                    updated_by = excluded.updated_by;
                INSERT INTO accord_kv_history (revision, key, op, value, version, secret, actor, at, action, request_id)
                VALUES (rev, p_keys[i], 'put', p_values[i], new_versions[i], p_secret[i], p_actor[i], now_ts,
                        p_action[i], p_request_id[i]);
                o_group := p_group[i];
                o_revision := rev;
                o_version := new_versions[i];
                o_at := now_ts;
                o_conflict_key := NULL;
                o_actual := NULL;
                o_expected := NULL;
                RETURN NEXT;
            END LOOP;
        END IF;
        first_i := last_i + 1;
    END LOOP;
END
$$;
"""


def upgrade() -> None:
    if uses_put_function(op.get_bind()):
        op.execute(PUT_GROUPS)


def downgrade() -> None:
    if uses_put_function(op.get_bind()):
        op.execute(f"DROP FUNCTION IF EXISTS accord_put_groups({SIGNATURE})")
