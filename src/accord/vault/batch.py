"""Many texts in one vault call: what a masking proxy (and the server's /api/vault routes) do per request.

``mask_many`` masks a request's texts with one atomic get-or-create; ``unmask_many`` resolves the tokens of
all its texts in one look-up; ``distinct_values`` counts what a batch could add before anything is stored.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from accord.vault.detectors import DetectorSet
from accord.vault.types import check_scope
from accord.vault.vault import Vault, too_many_values

__all__ = ["SEPARATOR", "distinct_values", "mask_many", "unmask_many"]

# Joins a request's texts for one mask call. No text holds a NUL (else they are masked one by one),
# and tokens never contain one, so a separator survives masking unless a detection ran across it.
SEPARATOR = "\n\x00\x1f\x00\n"


async def mask_many(
    vault: Vault, texts: Sequence[str], scope: str, *, max_new: int | None = None
) -> tuple[list[str], dict[str, str]]:
    """Mask all ``texts`` in one vault call (one atomic get-or-create); returns masked texts and mappings.

    More than ``max_new`` distinct values raises ``RequestTooLargeError`` and stores nothing.
    """
    if not texts:
        return [], {}
    if len(texts) == 1:
        result = await vault.mask(texts[0], scope, max_new=max_new)
        return [result.text], result.mappings
    if not any("\x00" in text for text in texts):
        result = await vault.mask(SEPARATOR.join(texts), scope, max_new=max_new)
        parts = result.text.split(SEPARATOR)
        if len(parts) == len(texts):
            return parts, result.mappings
    # A detection ran across two texts (a PEM block begun in one message and ended in another), or a
    # text holds a NUL: mask them one by one, counted first so that nothing is stored over the limit.
    if max_new is not None and distinct_values(vault.detectors, texts, max_new) > max_new:
        raise too_many_values(max_new)
    mappings: dict[str, str] = {}
    masked: list[str] = []
    for text in texts:
        result = await vault.mask(text, scope)
        masked.append(result.text)
        mappings.update(result.mappings)
    return masked, mappings


async def unmask_many(
    vault: Vault, texts: Sequence[str], scope: str, *, only: Collection[str] | None = None
) -> list[str]:
    """``vault.unmask`` of each text, with one look-up for the tokens of them all."""
    scope = check_scope(scope)
    allowed = None if only is None else frozenset(only)
    found = [vault.grammar.finditer(text) for text in texts]
    wanted = list(dict.fromkeys(m.token for matches in found for m in matches if allowed is None or m.token in allowed))
    if not wanted:
        return list(texts)
    originals = (await vault.resolve(wanted, scope)).originals
    out: list[str] = []
    for text, matches in zip(texts, found, strict=True):
        pieces: list[str] = []
        position = 0
        for match in matches:
            original = originals.get(match.token)
            if original is not None:
                pieces += [text[position : match.start], original]
                position = match.end
        pieces.append(text[position:])
        out.append("".join(pieces))
    return out


def distinct_values(detectors: DetectorSet, texts: Sequence[str], limit: int) -> int:
    """How many distinct values the texts would have masked, counting no further than ``limit + 1``."""
    values: set[str] = set()
    for text in texts:
        values.update(detection.value for detection in detectors.detect(text))
        if len(values) > limit:
            break
    return len(values)
