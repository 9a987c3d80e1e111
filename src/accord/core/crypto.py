"""AES-GCM encryption and keyed fingerprints, the one helper for everything accord keeps encrypted at rest.

A blob names the key that sealed it, so keys can be rotated by adding a new active key to the ring
while old blobs still open. Subkeys are derived with HKDF so the encryption key and the fingerprint
key are never the same bytes. Key material never appears in messages, reprs or logs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import logging
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from accord.core.environ import MASTER_KEY, MASTER_KEYS_RETIRED, Environ, current
from accord.core.errors import CryptoError, DecryptionError, MasterKeyError

__all__ = [
    "KEY_BYTES",
    "MASTER_KEYS_RETIRED_ENV",
    "MASTER_KEY_ENV",
    "Cipher",
    "CryptoError",
    "DecryptionError",
    "MasterKeyError",
    "cipher_for_database",
    "generate_key",
    "key_file_for",
    "load_keyring",
    "load_master_key",
    "write_key_file",
]

log = logging.getLogger("accord.crypto")

KEY_BYTES = 32
SealedProbe = Callable[[], bool]  # "does the database already hold data sealed with a master key?"
NONCE_BYTES = 12
BLOB_VERSION = 1
MASTER_KEY_ENV = MASTER_KEY
# Decrypt-only keys beside ACCORD_MASTER_KEY (comma-separated base64), for rolling a new key out.
MASTER_KEYS_RETIRED_ENV = MASTER_KEYS_RETIRED
KEY_FILE_SUFFIX = ".key"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_GENERATE_HINT = "python -c 'import base64,os; print(base64.b64encode(os.urandom(32)).decode())'"


def generate_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"accord " + purpose).derive(master)


def default_key_id(master: bytes) -> str:
    """A short id derived from the key, so two processes holding the same key agree on its id."""
    return "k" + _derive(master, b"key id")[:4].hex()


class Cipher:
    """A keyring of 32-byte master keys, one of them active for sealing new blobs.

    Blob layout: version byte, key-id length byte, key id (ASCII), 12-byte random nonce, ciphertext
    with the 16-byte GCM tag. ``aad`` binds a blob to where it belongs (for example scope and token),
    so a blob copied to another row fails to open.
    """

    def __init__(self, keys: Mapping[str, bytes], active: str, *, fingerprint_key: str | None = None) -> None:
        if active not in keys:
            raise MasterKeyError(f"active key id {active!r} is not in the keyring")
        self._aead: dict[str, AESGCM] = {}
        for key_id, key in keys.items():
            if not _KEY_ID.fullmatch(key_id):
                raise MasterKeyError(f"key id {key_id!r} must be 1-64 characters of [A-Za-z0-9._-]")
            if len(key) != KEY_BYTES:
                raise MasterKeyError(f"key {key_id!r} must be {KEY_BYTES} bytes, got {len(key)}")
            self._aead[key_id] = AESGCM(_derive(key, b"aes-256-gcm"))
        self.active = active
        self._keys = dict(keys)
        # Fingerprints stay tied to one key: rotating the sealing key must not change lookups.
        self.fingerprint_key_id = fingerprint_key or active
        if self.fingerprint_key_id not in keys:
            raise MasterKeyError(f"fingerprint key id {self.fingerprint_key_id!r} is not in the keyring")
        self._mac_key = _derive(keys[self.fingerprint_key_id], b"fingerprint")
        self._prefix = bytes([BLOB_VERSION, len(active)]) + active.encode()

    @classmethod
    def from_key(cls, key: bytes) -> Cipher:
        """A ring of one key, identified by an id derived from it."""
        if len(key) != KEY_BYTES:
            raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes, got {len(key)}")
        return cls.from_keys([key])

    @classmethod
    def from_keys(cls, keys: Sequence[bytes]) -> Cipher:
        """A ring whose first key seals new blobs; the others (retired or upcoming) only open old ones."""
        if not keys:
            raise MasterKeyError("a keyring needs at least one key")
        for key in keys:
            if len(key) != KEY_BYTES:
                raise MasterKeyError(f"a master key must be {KEY_BYTES} bytes, got {len(key)}")
        return cls({default_key_id(key): key for key in keys}, default_key_id(keys[0]))

    def with_fingerprint_key(self, key_id: str) -> Cipher:
        """The same ring, keying fingerprints with ``key_id`` (pinned by whoever made the first ones)."""
        if key_id not in self._keys:
            raise MasterKeyError(
                f"fingerprints were made with key {key_id!r}, which is not in this process's keyring; keep that key "
                f"among the retired keys ({MASTER_KEYS_RETIRED_ENV} or the key file)"
            )
        return Cipher(self._keys, self.active, fingerprint_key=key_id)

    @property
    def key_ids(self) -> list[str]:
        return sorted(self._aead)

    def __repr__(self) -> str:
        return f"Cipher(active={self.active!r}, keys={self.key_ids!r})"

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return self._prefix + nonce + self._aead[self.active].encrypt(nonce, plaintext, aad)

    def decrypt(self, blob: bytes, *, aad: bytes) -> bytes:
        key_id, nonce, sealed = self._split(blob)
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(f"blob was sealed with key {key_id!r}, which is not in this keyring {self.key_ids}")
        try:
            return aead.decrypt(nonce, sealed, aad)
        except InvalidTag:
            raise DecryptionError(
                f"blob sealed with key {key_id!r} failed authentication: wrong key, tampered data or wrong context"
            ) from None

    @classmethod
    def key_id_of(cls, blob: bytes) -> str:
        """The id of the key that sealed ``blob`` (DecryptionError if it is not an accord blob)."""
        return cls._split(blob)[0]

    def fingerprint(self, data: bytes) -> bytes:
        """HMAC-SHA256 under a derived subkey: equal inputs match, but the input cannot be read back."""
        return hmac.new(self._mac_key, data, hashlib.sha256).digest()

    @staticmethod
    def _split(blob: bytes) -> tuple[str, bytes, bytes]:
        if len(blob) < 2 or blob[0] != BLOB_VERSION:
            raise DecryptionError("not an accord encrypted blob (unknown version byte)")
        id_len = blob[1]
        body = 2 + id_len
        if len(blob) < body + NONCE_BYTES + 16:
            raise DecryptionError("encrypted blob is truncated")
        try:
            key_id = blob[2:body].decode("ascii")
        except UnicodeDecodeError:
            raise DecryptionError("encrypted blob has a malformed key id") from None
        return key_id, blob[body : body + NONCE_BYTES], blob[body + NONCE_BYTES :]


def decode_key(text: str, *, source: str) -> bytes:
    """Base64 of exactly 32 bytes; the error names the source but never echoes the text."""
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"{source} is not valid base64; generate a key with: {_GENERATE_HINT}") from None
    if len(key) != KEY_BYTES:
        raise MasterKeyError(
            f"{source} must be base64 of {KEY_BYTES} bytes, it decodes to {len(key)}; generate one with: "
            f"{_GENERATE_HINT}"
        )
    return key


def load_master_key(*, key_file: Path | None, environ: Mapping[str, str] | None = None) -> bytes:
    """The active key: ``ACCORD_MASTER_KEY`` if set, else the key file's first line (file created 0600 on first use)."""
    return load_keyring(key_file=key_file, environ=environ)[0]


def load_keyring(
    *, key_file: Path | None, environ: Mapping[str, str] | None = None, holds_sealed: SealedProbe | None = None
) -> list[bytes]:
    """Every key this process may open blobs with, the active (sealing) one first.

    ``ACCORD_MASTER_KEY`` plus the decrypt-only ``ACCORD_MASTER_KEYS_RETIRED`` if set; else the key
    file: its first line is the active key, later lines are retired keys kept by ``accord secrets
    rotate-key`` so blobs sealed before a rotation (or by a process that has not reloaded) still open.
    """
    env = _environ(environ)
    text = env.master_key
    if text:
        retired = env.master_keys_retired
        return [
            decode_key(text, source=MASTER_KEY_ENV),
            *(decode_key(part, source=f"{MASTER_KEYS_RETIRED_ENV} entry {n}") for n, part in enumerate(retired, 1)),
        ]
    if key_file is None:
        raise MasterKeyError(
            f"no master key: set {MASTER_KEY_ENV} to base64 of {KEY_BYTES} random bytes "
            f"(every instance needs the same key), e.g. from: {_GENERATE_HINT}"
        )
    return _read_or_create_key_file(key_file, holds_sealed)


def _environ(given: Mapping[str, str] | None) -> Environ:
    return current() if given is None else Environ.from_mapping(given)


def _read_or_create_key_file(path: Path, holds_sealed: SealedProbe | None) -> list[bytes]:
    if not path.exists():
        if holds_sealed is not None and holds_sealed():
            # A new key would seal new secrets while every old one stays unreadable: the loss must be loud.
            raise MasterKeyError(
                f"the key file {path} is missing, but the database holds data sealed with a master key; restore "
                f"the key file (or set {MASTER_KEY_ENV} to that key). No new key was created."
            )
        _create_key_file(path)
    try:
        mode = path.stat().st_mode & 0o777
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(f"cannot read the key file {path}: {type(exc).__name__}") from None
    if mode & 0o077:
        log.warning("key file %s is readable by other users (mode %o); run: chmod 600 %s", path, mode, path)
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise MasterKeyError(f"key file {path} holds no key")
    return [decode_key(line, source=f"key file {path} line {n}") for n, line in enumerate(lines, 1)]


def write_key_file(path: Path, keys: Sequence[bytes]) -> None:
    """Replace the key file atomically (mode 0600): the first key becomes active, the rest stay as retired."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.writelines(base64.b64encode(key).decode() + "\n" for key in keys)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _create_key_file(path: Path) -> None:
    """Write a temporary file and hard-link it into place, so racing processes all end up with one key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(base64.b64encode(generate_key()).decode() + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
            log.info("created master key file %s (mode 600); back it up, data encrypted with it needs it", path)
    finally:
        tmp.unlink(missing_ok=True)


def key_file_for(db_url: str) -> Path | None:
    """``accord.key`` beside ``accord.db`` for an embedded SQLite file; None for a server database."""
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise MasterKeyError("cannot tell where the key file belongs: the database URL is malformed") from None
    if not url.drivername.startswith("sqlite"):
        return None
    if not url.database or url.database == ":memory:":
        return None
    return Path(url.database).with_suffix(KEY_FILE_SUFFIX)


def cipher_for_database(
    db_url: str, *, environ: Mapping[str, str] | None = None, holds_sealed: SealedProbe | None = None
) -> Cipher:
    """The cipher every process on this database shares.

    ``ACCORD_MASTER_KEY`` wins. Otherwise an embedded SQLite file gets a key file beside it (unless
    ``holds_sealed`` says the database already holds sealed data: then a missing key file is an error); an
    in-memory SQLite database gets a throwaway key (its data dies with the process anyway); a
    server database needs ``ACCORD_MASTER_KEY``, since instances on other hosts cannot share a file.
    """
    if _environ(environ).master_key:
        return Cipher.from_keys(load_keyring(key_file=None, environ=environ))
    try:
        url = make_url(db_url)
    except ArgumentError:
        raise MasterKeyError("cannot choose a master key: the database URL is malformed") from None
    if url.drivername.startswith("sqlite"):
        key_file = key_file_for(db_url)
        if key_file is None:
            return Cipher.from_key(generate_key())
        return Cipher.from_keys(load_keyring(key_file=key_file, environ=environ, holds_sealed=holds_sealed))
    raise MasterKeyError(
        f"{MASTER_KEY_ENV} is not set: with a {url.get_backend_name()} database every instance must share one "
        f"master key. Set {MASTER_KEY_ENV} to base64 of {KEY_BYTES} random bytes, e.g. from: {_GENERATE_HINT}"
    )
