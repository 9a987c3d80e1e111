"""The local spool: append-only segment files of framed, checksummed records (the last delivery stage).

Record: ``b"AEV1"`` + payload length (u32 BE) + CRC-32 of length-bytes and payload (u32 BE) + payload.
A record that fails its check is skipped and counted, and the reader looks for the next magic whose
record checks out; a record cut short at the end of a file (a torn write) is skipped and counted.
Segments are replayed whole, oldest first, and deleted only after every record was delivered, so a
crash mid-replay resends at most one segment (the table's primary key absorbs that).

File work runs on a thread (``asyncio.to_thread``) so the event loop never waits on the disk.
"""

from __future__ import annotations

import contextlib
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import orjson

from accord.core.errors import AccordError

__all__ = ["MAGIC", "FsyncPolicy", "ReadResult", "Spool", "frame", "read_segment"]

MAGIC = b"AEV1"
_HEAD = struct.Struct(">4sII")
MAX_RECORD = 16 * 1024 * 1024
FsyncPolicy = Literal["always", "interval", "never"]
_SUFFIX = ".seg"


def frame(payload: bytes) -> bytes:
    length = struct.pack(">I", len(payload))
    return MAGIC + length + struct.pack(">I", zlib.crc32(length + payload)) + payload


@dataclass
class ReadResult:
    records: list[bytes]
    corrupt: int = 0
    truncated: int = 0


def read_segment(data: bytes) -> ReadResult:
    """Every intact record of one segment's bytes, with counts of the damaged and torn ones skipped."""
    result = ReadResult([])
    pos, size = 0, len(data)
    while pos < size:
        if size - pos < _HEAD.size or data[pos : pos + 4] != MAGIC:
            pos = _skip(data, pos, result, size)
            continue
        _, length, crc = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if length > MAX_RECORD or end > size:
            if length <= MAX_RECORD and data.find(MAGIC, pos + 4) < 0:
                result.truncated += 1  # the last record, cut short
                break
            pos = _skip(data, pos, result, size)
            continue
        payload = data[pos + _HEAD.size : end]
        if zlib.crc32(data[pos + 4 : pos + 8] + payload) != crc:
            pos = _skip(data, pos, result, size)
            continue
        result.records.append(payload)
        pos = end
    return result


def _skip(data: bytes, pos: int, result: ReadResult, size: int) -> int:
    """Count one damaged record and move to the next magic (or the end)."""
    following = data.find(MAGIC, pos + 1)
    if size - pos < _HEAD.size and following < 0:
        result.truncated += 1
    else:
        result.corrupt += 1
    return following if following >= 0 else size


class Spool:
    """One directory of segments. Not thread-safe: the pipeline's batcher is its only user."""

    def __init__(
        self,
        directory: str | Path,
        *,
        fsync: FsyncPolicy = "interval",
        segment_bytes: int = 4 * 1024 * 1024,
        max_bytes: int = 256 * 1024 * 1024,
        fsync_interval_s: float = 1.0,
    ) -> None:
        if fsync not in ("always", "interval", "never"):
            raise AccordError(f"spool fsync policy must be always, interval or never, got {fsync!r}")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.fsync = fsync
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self._fsync_interval = fsync_interval_s
        self._last_sync = time.monotonic()
        self._file: BinaryIO | None = None
        self._path: Path | None = None
        self._written = 0
        self.dropped_normal = 0
        self.dropped_priority = 0

    # ----- writing ------------------------------------------------------------------------------

    def segments(self) -> list[Path]:
        return sorted(self.directory.glob("*" + _SUFFIX))

    def size(self) -> int:
        total = 0
        for path in self.segments():
            with contextlib.suppress(FileNotFoundError):
                total += path.stat().st_size
        return total

    def append(self, payloads: list[bytes]) -> None:
        """Append one batch (and fsync per the policy); sheds old segments first when over the cap."""
        data = b"".join(frame(payload) for payload in payloads)
        self._make_room(len(data))
        handle = self._writer()
        handle.write(data)
        handle.flush()
        self._written += len(data)
        now = time.monotonic()
        if self.fsync == "always" or (self.fsync == "interval" and now - self._last_sync >= self._fsync_interval):
            os.fsync(handle.fileno())
            self._last_sync = now
        if self._written >= self.segment_bytes:
            self.rotate()

    def _writer(self) -> BinaryIO:
        if self._file is None:
            last = self.segments()
            number = int(last[-1].stem) + 1 if last else 1
            self._path = self.directory / f"{number:020d}{_SUFFIX}"
            self._file = self._path.open("ab")
            self._written = 0
        return self._file

    def rotate(self) -> None:
        """Close the segment being written, so replay may take it."""
        if self._file is not None:
            self._file.flush()
            if self.fsync != "never":
                os.fsync(self._file.fileno())
            self._file.close()
            self._file = None
            self._path = None

    def close(self) -> None:
        self.rotate()

    # ----- reading ------------------------------------------------------------------------------

    def closed_segments(self) -> list[Path]:
        return [path for path in self.segments() if path != self._path]

    def is_empty(self) -> bool:
        return not self.segments()

    @staticmethod
    def read(path: Path) -> ReadResult:
        return read_segment(path.read_bytes())

    @staticmethod
    def remove(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    # ----- the size cap -------------------------------------------------------------------------

    def _make_room(self, incoming: int) -> None:
        closed = self.closed_segments()
        total = self.size()
        for path in closed:
            if total + incoming <= self.max_bytes:
                return
            total -= self._shed_normal(path)
        for path in self.closed_segments():
            if total + incoming <= self.max_bytes:
                return
            records = self.read(path).records
            self.dropped_priority += len(records)
            total -= path.stat().st_size
            self.remove(path)

    def _shed_normal(self, path: Path) -> int:
        """Rewrite ``path`` without its ``sampled`` events; the bytes freed."""
        before = path.stat().st_size
        records = self.read(path).records
        kept = [r for r in records if not _is_normal(r)]
        self.dropped_normal += len(records) - len(kept)
        if len(kept) == len(records):
            return 0
        temporary = path.with_suffix(".tmp")
        with temporary.open("wb") as handle:
            handle.write(b"".join(frame(r) for r in kept))
            handle.flush()
            os.fsync(handle.fileno())
        temporary.replace(path)
        return before - path.stat().st_size


def _is_normal(payload: bytes) -> bool:
    try:
        return bool(orjson.loads(payload).get("sampling_rule") == "sampled")
    except (orjson.JSONDecodeError, AttributeError):
        return False


def iter_records(spool: Spool) -> Iterator[tuple[Path, ReadResult]]:
    for path in spool.closed_segments():
        yield path, spool.read(path)
