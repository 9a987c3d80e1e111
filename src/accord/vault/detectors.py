"""Detectors: named patterns that find sensitive values, each with the token type that replaces them.

Overlaps are settled the same way every time: the longest match wins, then the higher priority
(more specific), then the earlier start, then the detector name. A match directly followed by a
digit is dropped, because its token's digits would run into it and could not be read back.
"""

from __future__ import annotations

import bisect
import logging
import re
from collections.abc import Callable, Iterable, Mapping
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
    ) -> Detector:
        """``boundary(text, start, end)`` checks the surroundings in Python, so the regex can begin with a
        character class, which lets the regex engine skip ahead fast (a leading look-behind would not).
        ``finder(text)`` yields the spans ``pattern`` would match, faster (for example from each ``@``)."""
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
        )

    def spans(self, text: str) -> Iterable[tuple[int, int]]:
        if self.finder is not None:
            yield from self.finder(text)
            return
        for match in self.pattern.finditer(text):
            yield match.span(self.group)

    def applies(self, text: str, probe: _Probe) -> bool:
        if self.triggers and not any(probe.contains(trigger, self.ignore_case) for trigger in self.triggers):
            return False
        if self.prefilter is not None and not probe.search(self.prefilter):
            return False
        return self.precheck is None or self.precheck(probe.text)


class _Probe:
    """Cheap questions about one text, each answered once: detectors share triggers such as ``arn:``."""

    def __init__(self, text: str) -> None:
        self.text = text
        self._lowered: str | None = None
        self._answers: dict[tuple[str, bool], bool] = {}
        self._searches: dict[re.Pattern[str], bool] = {}

    def contains(self, needle: str, ignore_case: bool) -> bool:
        answer = self._answers.get((needle, ignore_case))
        if answer is None:
            if ignore_case and self._lowered is None:
                self._lowered = self.text.lower()
            answer = needle in (self._lowered if ignore_case else self.text)  # type: ignore[operator]
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
                candidates.extend(self._matches(detector, text))
        return [
            Detection(start, end, detector.token_type, text[start:end], detector.name)
            for start, end, detector in _resolve(candidates)
        ]

    @staticmethod
    def _matches(detector: Detector, text: str) -> Iterable[tuple[int, int, Detector]]:
        for start, end in detector.spans(text):
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


def custom_detectors(patterns: Mapping[str, str]) -> tuple[list[Detector], list[str]]:
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
            problems.append(f"custom pattern {token_type!r}: {detail}")
    for problem in problems:
        log.error("vault: ignoring %s", problem)
    return found, problems
