"""Detectors: named patterns that find sensitive values, each with the token type that replaces them.

Overlaps are settled the same way every time: the longest match wins, then the higher priority
(more specific), then the earlier start, then the detector name. A match directly followed by a
digit is dropped, because its token's digits would run into it and could not be read back.
"""

from __future__ import annotations

import bisect
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from accord.core.errors import AccordError
from accord.vault.tokens import TokenGrammar
from accord.vault.types import check_token_type

__all__ = [
    "CUSTOM_PRIORITY",
    "LITERAL_TYPE",
    "MAX_CUSTOM_PATTERN_CHARS",
    "Detection",
    "Detector",
    "DetectorSet",
    "custom_detectors",
]

log = logging.getLogger("accord.vault")

LITERAL_TYPE = "VAULT_LITERAL"
CUSTOM_PRIORITY = 50
MAX_CUSTOM_PATTERN_CHARS = 2000


@dataclass(frozen=True)
class Detector:
    """One pattern. ``group`` is the part that is masked; ``triggers`` are substrings one of which must occur.

    Triggers and ``prefilter`` are cheap tests that let clean text skip the regex entirely.
    """

    name: str
    token_type: str
    pattern: re.Pattern[str]
    group: str | int = 0
    priority: int = 0
    triggers: tuple[str, ...] = ()
    ignore_case: bool = False
    prefilter: re.Pattern[str] | None = None
    validate: Callable[[str], bool] | None = None
    boundary: Callable[[str, int, int], bool] | None = None
    precheck: Callable[[str], bool] | None = None
    finder: Callable[[str], Iterable[tuple[int, int]]] | None = None
    head: re.Pattern[str] | None = None
    head_width: int = 0

    @classmethod
    def build(
        cls,
        name: str,
        token_type: str,
        pattern: str,
        *,
        priority: int = 0,
        triggers: tuple[str, ...] = (),
        ignore_case: bool = False,
        prefilter: str | None = None,
        validate: Callable[[str], bool] | None = None,
        boundary: Callable[[str, int, int], bool] | None = None,
        precheck: Callable[[str], bool] | None = None,
        finder: Callable[[str], Iterable[tuple[int, int]]] | None = None,
        head: str | None = None,
        head_width: int = 0,
    ) -> Detector:
        """``boundary(text, start, end)`` checks the surroundings in Python, so the regex can begin with a
        character class, which lets the regex engine skip ahead fast (a leading look-behind would not).
        ``finder(text)`` yields the spans ``pattern`` would match, faster (for example from each ``@``).
        ``head`` is what every match begins with (``pattern`` starts with ``(?i:<head>)`` when it ignores
        case), at most ``head_width`` characters long and holding one of the triggers. The pattern is then
        tried only where the head occurs near a trigger; a regex scan for a case-insensitive keyword is slow."""
        if head is not None:
            _check_head(name, pattern, head, head_width, triggers, ignore_case)
        compiled = re.compile(pattern)
        group: str | int = "value" if "value" in compiled.groupindex else 0
        return cls(
            name=name,
            token_type=check_token_type(token_type),
            pattern=compiled,
            group=group,
            priority=priority,
            triggers=tuple(t.lower() for t in triggers) if ignore_case else triggers,
            ignore_case=ignore_case,
            prefilter=re.compile(prefilter) if prefilter else None,
            validate=validate,
            boundary=boundary,
            precheck=precheck,
            finder=finder,
            head=re.compile(head) if head is not None else None,  # searched in the lower-cased text
            head_width=head_width,
        )

    def spans(self, text: str, probe: _Probe | None = None) -> Iterable[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        hay = probe.haystack(self.ignore_case) if probe is not None and self.head is not None else None
        if hay is not None:
            assert probe is not None
            yield from self._spans_at_heads(text, hay, probe.occurrences(self.triggers, self.ignore_case))
            return
        # without a haystack whose positions are the text's (rare: see _Probe.haystack), scan with the regex
        for match in self.pattern.finditer(text):
            yield match.span(self.group)

    def _spans_at_heads(self, text: str, hay: str, hits: list[int]) -> Iterator[tuple[int, int]]:
        """What ``pattern.finditer`` yields, trying the pattern only where a head begins.

        Every match begins with a head that holds a trigger, so it starts at most ``reach`` characters
        before an occurrence of a trigger; heads are looked for in that window, in text order.
        """
        assert self.head is not None
        reach = self.head_width - min(map(len, self.triggers))
        position = examined = 0
        for hit in hits:
            start = max(position, examined, hit - reach)
            while (head := self.head.search(hay, start, hit + self.head_width)) is not None and head.start() <= hit:
                match = self.pattern.match(text, head.start())
                if match is not None:
                    yield match.span(self.group)
                    position = match.end()
                    break
                start = head.start() + 1
            examined = max(examined, hit + 1)

    def applies(self, text: str, probe: _Probe) -> bool:
        if self.head is not None and probe.haystack(self.ignore_case) is not None:
            if not probe.occurrences(self.triggers, self.ignore_case):  # needed anyway: one pass, not two
                return False
        elif self.triggers and not any(probe.contains(trigger, self.ignore_case) for trigger in self.triggers):
            return False
        if self.prefilter is not None and not probe.search(self.prefilter):
            return False
        return self.precheck is None or self.precheck(probe.text)


def _check_head(name: str, pattern: str, head: str, width: int, triggers: tuple[str, ...], ignore_case: bool) -> None:
    wrapped = f"(?i:{head})" if ignore_case else head
    lower = not ignore_case or head == head.lower()
    if not (pattern.startswith(wrapped) and lower and triggers and width >= max(map(len, triggers))):
        raise AccordError(
            f"detector {json.dumps(name)}: the pattern must begin with its head, which must hold a trigger"
        )


def _occurrences(hay: str, needles: tuple[str, ...]) -> list[int]:
    """Where each needle occurs, in text order."""
    found: list[int] = []
    for needle in needles:
        at = hay.find(needle)
        while at != -1:
            found.append(at)
            at = hay.find(needle, at + 1)
    return sorted(found) if len(needles) > 1 else found


# Characters a case-insensitive regex matches to an ASCII letter although str.lower() does not map them there.
_FOLD_EXTRA = str.maketrans({"\u0131": "i", "\u017f": "s"})


class _Probe:
    """Cheap questions about one text, each answered once: detectors share triggers such as ``arn:``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._folded: str | None = None
        self._fold_ok = True
        self._answers: dict[tuple[str, bool], bool] = {}
        self._searches: dict[re.Pattern[str], bool] = {}
        self._occurrences: dict[tuple[tuple[str, ...], bool], list[int]] = {}

    def haystack(self, ignore_case: bool) -> str | None:
        """The text to find (lower-case) triggers in: with ``ignore_case``, a lower-cased copy whose
        positions are the text's, or None where lower-casing changes lengths (then scan with the regex)."""
        if not ignore_case:
            return self.text
        if self._folded is None and self._fold_ok:
            folded = self.text.lower()
            if not self.text.isascii():
                folded = folded.translate(_FOLD_EXTRA) if "\u0131" in folded or "\u017f" in folded else folded
                self._fold_ok = len(folded) == len(self.text)
            self._folded = folded if self._fold_ok else None
        return self._folded

    def occurrences(self, needles: tuple[str, ...], ignore_case: bool) -> list[int]:
        """Positions of the needles in ``haystack(ignore_case)`` (which must exist), shared by detectors."""
        found = self._occurrences.get((needles, ignore_case))
        if found is None:
            hay = self.haystack(ignore_case)
            assert hay is not None
            found = self._occurrences[(needles, ignore_case)] = _occurrences(hay, needles)
        return found

    def contains(self, needle: str, ignore_case: bool) -> bool:
        answer = self._answers.get((needle, ignore_case))
        if answer is None:
            hay = self.haystack(ignore_case)
            answer = needle in (hay if hay is not None else self.text.lower())
            self._answers[(needle, ignore_case)] = answer
        return answer

    def search(self, pattern: re.Pattern[str]) -> bool:
        answer = self._searches.get(pattern)
        if answer is None:
            answer = self._searches[pattern] = pattern.search(self.text) is not None
        return answer


@dataclass(frozen=True, slots=True)
class Detection:
    start: int
    end: int
    token_type: str
    value: str = field(repr=False)  # the sensitive text itself: never in logs
    detector: str = ""


def _rank(candidate: tuple[int, int, Detector]) -> tuple[int, int, int, str]:
    start, end, detector = candidate
    return (start - end, -detector.priority, start, detector.name)


class DetectorSet:
    """An immutable set of detectors; ``detect`` returns non-overlapping detections in text order."""

    def __init__(self, detectors: Iterable[Detector], *, literal_types: Iterable[str] = ()) -> None:
        self.detectors = tuple(detectors)
        names = [d.name for d in self.detectors]
        if len(names) != len(set(names)):
            raise AccordError(f"detector names must be unique, got {sorted(names)}")
        types = {d.token_type for d in self.detectors} | {LITERAL_TYPE} | set(literal_types)
        # Text that already looks like a token is itself masked (as VAULT_LITERAL), so a token a caller
        # typed can never be unmasked into somebody's original.
        self.grammar = TokenGrammar(types)
        literal = Detector(
            name="vault_literal",
            token_type=LITERAL_TYPE,
            pattern=self.grammar.pattern,
            priority=20,
            triggers=("_",),
            finder=lambda text: ((m.start, m.end) for m in self.grammar.finditer(text)),
        )
        self._all = (*self.detectors, literal)

    @property
    def types(self) -> frozenset[str]:
        return self.grammar.types

    def detect(self, text: str) -> list[Detection]:
        probe = _Probe(text)
        candidates: list[tuple[int, int, Detector]] = []
        for detector in self._all:
            if detector.applies(text, probe):
                candidates.extend(self._matches(detector, text, probe))
        return [
            Detection(start, end, detector.token_type, text[start:end], detector.name)
            for start, end, detector in _resolve(candidates)
        ]

    @staticmethod
    def _matches(detector: Detector, text: str, probe: _Probe | None = None) -> Iterable[tuple[int, int, Detector]]:
        for start, end in detector.spans(text, probe):
            if start >= end or (end < len(text) and "0" <= text[end] <= "9"):
                continue
            if detector.boundary is not None and not detector.boundary(text, start, end):
                continue
            if detector.validate is not None and not detector.validate(text[start:end]):
                continue
            yield start, end, detector


def _resolve(candidates: list[tuple[int, int, Detector]]) -> list[tuple[int, int, Detector]]:
    """Longest first, then most specific; a candidate overlapping an accepted one is dropped."""
    starts: list[int] = []
    ends: list[int] = []
    chosen: list[tuple[int, int, Detector]] = []
    for candidate in sorted(candidates, key=_rank):
        start, end, _ = candidate
        index = bisect.bisect_right(starts, start)
        if index and ends[index - 1] > start:
            continue
        if index < len(starts) and starts[index] < end:
            continue
        starts.insert(index, start)
        ends.insert(index, end)
        chosen.insert(index, candidate)
    return chosen


def custom_detectors(patterns: Mapping[str, str], *, quiet: bool = False) -> tuple[list[Detector], list[str]]:
    """Detectors from ``{TOKEN_TYPE: regex}``; a bad entry is reported and skipped, never fatal.

    A named group ``value`` limits what is masked to that group, as in the built-in context patterns.
    """
    found: list[Detector] = []
    problems: list[str] = []
    for token_type, pattern in sorted(patterns.items()):
        try:
            if not isinstance(pattern, str) or not pattern or len(pattern) > MAX_CUSTOM_PATTERN_CHARS:
                raise AccordError(f"must be a regex of 1-{MAX_CUSTOM_PATTERN_CHARS} characters")
            found.append(Detector.build(f"custom:{token_type}", token_type, pattern, priority=CUSTOM_PRIORITY))
        except (AccordError, re.error) as exc:
            detail = exc.detail if isinstance(exc, AccordError) else f"not a valid regex: {exc}"
            problems.append(f"custom pattern {json.dumps(token_type)}: {detail}")
    for problem in [] if quiet else problems:
        log.error("vault: ignoring %s", problem)
    return found, problems
