"""`vault.custom_patterns` is validated when written: a bad entry is refused, naming it; the working ones stay."""

from __future__ import annotations

import json

import pytest

import accord
from accord.core.errors import ValidationFailedError
from accord.vault import VaultSettings
from tests.cli.cli_helpers import run_cli

GOOD = {"TICKET": r"TCK-\d{6}"}


async def test_a_bad_pattern_is_refused_everywhere_and_the_stored_ones_stay(sqlite_url: str) -> None:
    async with await accord.connect(sqlite_url, "", groups=[VaultSettings], watch=False) as cfg:
        await cfg.set("vault.custom_patterns", GOOD)
        for bad, named in (({**GOOD, "BROKEN": "(unclosed"}, "BROKEN"), ({"lower_case": "x+"}, "lower_case")):
            with pytest.raises(ValidationFailedError) as caught:
                await cfg.set("vault.custom_patterns", bad)
            assert named in caught.value.detail, caught.value.detail
            refused = run_cli("config", "set", "vault.custom_patterns", json.dumps(bad), db=sqlite_url, code=2)
            assert named in refused.stderr, refused.stderr
        assert cfg.get("vault.custom_patterns") == GOOD
    shown = json.loads(run_cli("config", "get", "vault.custom_patterns", "--json", db=sqlite_url).stdout)
    assert shown["value"] == GOOD and shown["version"] == 1 and shown["type"] == "dict[str, str]", shown
