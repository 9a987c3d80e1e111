"""Every proxy test cuts the echo upstream's answers by its own seed, printed with its failure report."""

from __future__ import annotations

import pytest

from tests.proxy.echo_seed import seed_for, set_seed


@pytest.fixture(autouse=True)
def echo_seed(request: pytest.FixtureRequest) -> int:
    seed = seed_for(request.node.nodeid)
    set_seed(seed)
    request.node.add_report_section("setup", "echo seed", f"the echo upstream cut its answers with seed {seed}")
    return seed
