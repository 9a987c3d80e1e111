"""The events knobs from the environment: ACCORD_SPOOL_DIR, ACCORD_SPOOL_FSYNC, ACCORD_SPOOL_MAX_BYTES."""

from __future__ import annotations

from pathlib import Path

import pytest

from accord.core.environ import Environ
from accord.core.errors import EnvironError
from accord.events import SamplingPolicy, start
from tests.events.conftest import wait_for


def listing(path: Path) -> list[Path]:
    return sorted(path.iterdir())


def test_the_spool_variables_are_parsed(tmp_path: Path) -> None:
    env = Environ.from_mapping(
        {"ACCORD_SPOOL_DIR": str(tmp_path / "s"), "ACCORD_SPOOL_FSYNC": "Always", "ACCORD_SPOOL_MAX_BYTES": "64MiB"}
    )
    assert (env.spool_dir, env.spool_fsync, env.spool_max_bytes) == (str(tmp_path / "s"), "always", 64 * 1024**2)
    assert Environ.from_mapping({"ACCORD_SPOOL_MAX_BYTES": "1000"}).spool_max_bytes == 1000
    assert Environ.from_mapping({"ACCORD_SPOOL_MAX_BYTES": "2g"}).spool_max_bytes == 2 * 1024**3
    empty = Environ.from_mapping({"ACCORD_SPOOL_DIR": " ", "ACCORD_SPOOL_FSYNC": "", "ACCORD_SPOOL_MAX_BYTES": ""})
    assert (empty.spool_dir, empty.spool_fsync, empty.spool_max_bytes) == (None, None, None)


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("ACCORD_SPOOL_FSYNC", "sometimes", "is not one of always, interval, never"),
        ("ACCORD_SPOOL_MAX_BYTES", "lots", "is not a size in bytes"),
        ("ACCORD_SPOOL_MAX_BYTES", "0", "is not a size in bytes"),
        ("ACCORD_SPOOL_MAX_BYTES", "1.5G", "is not a size in bytes"),
        ("ACCORD_SPOOL_DIR", "FILE", "exists and is not a directory"),
    ],
)
def test_a_bad_value_names_the_variable(name: str, value: str, says: str, tmp_path: Path) -> None:
    if value == "FILE":
        value = str(tmp_path / "a-file")
        Path(value).write_text("x")
    with pytest.raises(EnvironError) as caught:
        Environ.from_mapping({name: value})
    assert caught.value.detail.startswith(f"{name}=") and says in caught.value.detail


async def test_start_spools_into_accord_spool_dir_with_its_policy(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = tmp_path / "from-env"
    monkeypatch.setenv("ACCORD_SPOOL_DIR", str(spool))
    monkeypatch.setenv("ACCORD_SPOOL_FSYNC", "never")
    monkeypatch.setenv("ACCORD_SPOOL_MAX_BYTES", "8MiB")
    monkeypatch.chdir(tmp_path)
    # no Redis, no database stage: the spool is the only stage, so the events must land in ACCORD_SPOOL_DIR
    pipeline = await start("svc", sqlite_url, "", policy=SamplingPolicy.of(sample_rate=1.0), database_stage=False)
    try:
        assert (pipeline.options.spool_fsync, pipeline.options.spool_max_bytes) == ("never", 8 * 1024**2)
        for i in range(10):
            assert pipeline.emit({"route": "/x", "i": i})

        async def spooled() -> bool:
            return pipeline.stats().spooled == 10

        await wait_for(spooled, what="10 events in the spool")  # flush() waits for an empty spool: never here
    finally:
        await pipeline.aclose()
    assert [p.suffix for p in listing(spool)] == [".seg"]
    assert "accord-events-spool" not in [p.name for p in listing(tmp_path)]


async def test_start_refuses_a_bad_variable_before_opening_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACCORD_SPOOL_FSYNC", "yes")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(EnvironError, match="ACCORD_SPOOL_FSYNC"):
        await start("svc", f"sqlite:///{tmp_path}/a.db", "", policy=SamplingPolicy.of(sample_rate=1.0))
    assert listing(tmp_path) == []
