"""Token policies obey one law, checked here against a reference model written the other way round.

The law: a key's access is the access of the rule with the longest prefix of that key; of several rules
with that same prefix, the narrowest (deny, then read, then write: a deny is never overridden); with no
matching rule, deny. Read is granted by read and
write, write only by write, reveal only with read and ``reveal_secrets``.

`Policy.access` scans the rules keeping the longest match; the model instead walks up the key's own
prefixes, longest first, and takes the narrowest rule of the first prefix that has any.
"""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from accord.auth.policy import ACCESS_LEVELS, MANAGEMENT, Access, Policy, Rule, parse_rule

ALPHABET = "ab/."  # few characters, so prefixes of one key collide with other rules often
KEYS = st.text(ALPHABET, max_size=8)
ACCESS = st.sampled_from(["deny", "read", "write"])


def narrowest(accesses: list[Access]) -> Access:
    return min(accesses, key=ACCESS_LEVELS.__getitem__)


def model_access(rules: tuple[Rule, ...], key: str) -> Access:
    for length in range(len(key), -1, -1):
        found = [rule.access for rule in rules if rule.prefix == key[:length]]
        if found:
            return narrowest(found)
    return "deny"


@st.composite
def policy_and_key(draw: st.DrawFn) -> tuple[Policy, str]:
    """Rules whose prefixes are partly cut from the key itself, so that most keys match several rules."""
    key = draw(KEYS)
    own_prefixes = st.integers(0, len(key)).map(lambda cut: key[:cut])
    prefixes = st.one_of(own_prefixes, st.text(ALPHABET, max_size=5))
    rules = draw(st.lists(st.builds(Rule, prefixes, ACCESS), max_size=8))
    return Policy(tuple(rules), draw(st.booleans())), key


@given(policy_and_key())
def test_the_longest_matching_prefix_wins_and_no_match_denies(case: tuple[Policy, str]) -> None:
    policy, key = case
    assert policy.access(key) == model_access(policy.rules, key)


@given(policy_and_key())
def test_read_write_and_reveal_follow_from_the_access(case: tuple[Policy, str]) -> None:
    policy, key = case
    access = model_access(policy.rules, key)
    assert policy.can_read(key) == (access in ("read", "write"))
    assert policy.can_write(key) == (access == "write")
    assert policy.can_reveal(key) == (policy.reveal_secrets and access in ("read", "write"))


@given(policy_and_key(), st.randoms(use_true_random=False))
def test_the_order_of_rules_with_distinct_prefixes_does_not_matter(
    case: tuple[Policy, str], rng: random.Random
) -> None:
    policy, key = case
    distinct = tuple({rule.prefix: rule for rule in reversed(policy.rules)}.values())
    shuffled = list(distinct)
    rng.shuffle(shuffled)
    assert Policy(tuple(shuffled)).access(key) == Policy(distinct).access(key)


@given(policy_and_key(), ACCESS)
def test_a_rule_for_the_key_itself_decides_unless_a_narrower_one_has_the_same_prefix(
    case: tuple[Policy, str], access: Access
) -> None:
    policy, key = case
    extended = Policy((*policy.rules, Rule(key, access)))
    earlier = [rule.access for rule in policy.rules if rule.prefix == key]
    assert extended.access(key) == narrowest([*earlier, access])


@given(policy_and_key(), st.text(ALPHABET, min_size=1, max_size=5), ACCESS)
def test_a_rule_that_does_not_match_changes_nothing(case: tuple[Policy, str], prefix: str, access: Access) -> None:
    policy, key = case
    if key.startswith(prefix):
        prefix = key + "x" + prefix  # longer than the key, so it cannot be a prefix of it
    assert Policy((*policy.rules, Rule(prefix, access))).access(key) == policy.access(key)


@given(policy_and_key())
def test_rules_and_policies_survive_their_text_and_json_forms(case: tuple[Policy, str]) -> None:
    policy, _ = case
    assert tuple(parse_rule(str(rule)) for rule in policy.rules) == policy.rules
    assert Policy.from_json(policy.to_json()) == policy


@given(KEYS)
def test_no_rules_deny_everything_and_the_management_policy_allows_everything(key: str) -> None:
    assert Policy(()).access(key) == "deny"
    assert not Policy((), reveal_secrets=True).can_reveal(key)
    assert MANAGEMENT.can_write(key) and MANAGEMENT.can_reveal(key)
