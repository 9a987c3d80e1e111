"""`accord token create` (a real subprocess, on a real database) warns about a prefix that stops mid-segment."""

from tests.cli.cli_helpers import run_cli


def test_the_cli_warns_about_a_prefix_that_stops_mid_segment(sqlite_url: str) -> None:
    loose = run_cli("token", "create", "--name", "loose", "--rule", "config/app=read", db=sqlite_url)
    assert "segment boundary" in loose.stderr and "config/app=read" in loose.stderr
    assert loose.stdout.strip().startswith("acc_")
    tight = run_cli("token", "create", "--name", "tight", "--rule", "config/app/=read", db=sqlite_url)
    assert "segment boundary" not in tight.stderr
