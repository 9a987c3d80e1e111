"""The consumer's batch insert (accord.events.bulk) on real PostgreSQL and SQLite: idempotent, atomic, typed errors."""

from __future__ import annotations

import orjson
import pytest
import sqlalchemy as sa

from accord.events.bulk import RefusedBatchError, insert_rows
from accord.events.pipeline import row_of
from accord.store.events import EventRow
from tests.events.conftest import event_ids


def _row(n: int, **extra: object) -> EventRow:
    event = {"event_id": f"p:{n}", "producer": "p", "seq": n, "ts": 1.5 + n, "service": "svc", "route": "/r",
             "status": 200, "request_id": f"r{n}", "sampling_rule": "sampled", **extra}  # fmt: skip
    return row_of(orjson.dumps(event), event)


@pytest.mark.parametrize("backend", ["pg_url", "sqlite_url"])
async def test_a_batch_goes_in_once_whatever_is_redelivered(
    backend: str, request: pytest.FixtureRequest, engine_for
) -> None:
    engine, _ = await engine_for(request.getfixturevalue(backend))
    await insert_rows(engine, [_row(n) for n in range(1, 3001)])
    # a redelivered batch, overlapping the first and holding one event twice: only the new ones go in
    await insert_rows(engine, [_row(n) for n in range(2990, 3011)] + [_row(3005)])
    ids = await event_ids(engine)
    assert len(ids) == len(set(ids)) == 3010
    async with engine.connect() as conn:
        row = (await conn.execute(sa.text("SELECT * FROM accord_event WHERE event_id = 'p:7'"))).mappings().one()
    assert row["seq"] == 7 and row["ts"] == 8.5 and row["status"] == 200 and row["request_id"] == "r7"
    assert orjson.loads(row["body"])["event_id"] == "p:7"


async def test_a_value_postgresql_refuses_fails_the_whole_batch_as_refused(pg_url: str, engine_for) -> None:
    engine, _ = await engine_for(pg_url)
    with pytest.raises(RefusedBatchError, match="out of int32 range") as refused:
        await insert_rows(engine, [_row(1), _row(2, status=2**40)])  # status is int4
    assert "1099511627776" not in str(refused.value)  # the reason names the column, never the values
    assert await event_ids(engine) == []  # atomic: nothing of the refused batch went in
    await insert_rows(engine, [_row(1)])
    assert await event_ids(engine) == ["p:1"]
