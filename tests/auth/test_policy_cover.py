"""Policy.covers agrees with checking every key: a child policy is covered iff no key is more open under it."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from accord.auth.policy import ACCESS_LEVELS, Policy, Rule

ALPHABET = "ab/"
prefixes = st.text(ALPHABET, max_size=4)
rules = st.lists(st.builds(Rule, prefixes, st.sampled_from(["deny", "read", "write"])), max_size=4)
KEYS = ["".join(chars) for n in range(6) for chars in itertools.product(ALPHABET, repeat=n)]  # longer than any prefix


@given(rules, rules, st.booleans(), st.booleans())
def test_covers_matches_every_key(mine: list[Rule], theirs: list[Rule], reveal: bool, their_reveal: bool) -> None:
    parent, child = Policy(tuple(mine), reveal), Policy(tuple(theirs), their_reveal)
    by_keys = all(ACCESS_LEVELS[child.access(key)] <= ACCESS_LEVELS[parent.access(key)] for key in KEYS)
    assert parent.covers(child) == (by_keys and (reveal or not their_reveal))
    assert (parent.uncovered(child) == []) == parent.covers(child)


def test_deny_wins_among_equal_prefixes() -> None:
    for order in (
        (Rule("config/", "write"), Rule("config/", "deny")),
        (Rule("config/", "deny"), Rule("config/", "write")),
    ):
        assert Policy(order).access("config/x") == "deny"
