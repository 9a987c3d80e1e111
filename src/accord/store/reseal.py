"""Resealing stored blobs under the active key: what every capability that seals data reports back.

A reseal opens a blob with whichever key of the ring sealed it and seals it again under the
active key, bound to the same context (AAD). Blobs already under the active key are left alone,
so counting what a reseal *would* change (a dry run) and changing it give the same numbers.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from accord.core.crypto import Cipher, CryptoError

__all__ = ["ResealCount", "reseal_blob"]


@dataclass
class ResealCount:
    """One capability's reseal: blobs resealed (or, in a dry run, to reseal) per part, and all blobs per key id."""

    capability: str
    resealed: dict[str, int] = field(default_factory=dict)
    by_key_id: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return sum(self.resealed.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "resealed": dict(self.resealed),
            "total": self.total,
            "blobs_by_key_id": dict(sorted(self.by_key_id.items())),
        }


def reseal_blob(cipher: Cipher, blob: bytes, *, aad: bytes, count: ResealCount, part: str, what: str) -> bytes | None:
    """``blob`` sealed again under ``cipher.active``, or None if it already is; counted in ``count``.

    A blob that does not open aborts the whole reseal (the caller's transaction rolls back), naming ``what``.
    """
    count.resealed.setdefault(part, 0)
    try:
        key_id = Cipher.key_id_of(blob)
        count.by_key_id[key_id] += 1
        if key_id == cipher.active:
            return None
        plain = cipher.decrypt(blob, aad=aad)
    except CryptoError as exc:
        raise CryptoError(f"cannot open the {what}, so nothing was re-encrypted: {exc.detail}") from None
    count.resealed[part] += 1
    return cipher.encrypt(plain, aad=aad)
