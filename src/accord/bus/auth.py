"""What makes a bus message believable: the deployment's namespace and an HMAC keyed from its database.

A bus message is a notification, never authority. It is signed with a key derived from the
deployment's ``bus_key``, a random secret created once in the database (migration 0005): every
process that can read the database can sign and verify, and nobody who can only reach Redis (or
another deployment on the same Redis) can. The master key file is not used, because processes that
legitimately publish (a CLI with only ``ACCORD_DB_URL``) may not have it, and because reaching the
database is already the line between "inside" and "outside" a deployment. A message that fails the
check is dropped and counted (``rejected``), never applied.
"""

from __future__ import annotations

import hashlib
import hmac
import logging

from accord.bus.wire import peek_revision
from accord.core.redis_keys import DEPLOYMENT_POINTER_PREFIX, RedisKeys
from accord.store.types import Deployment, KVStore

log = logging.getLogger("accord.bus")
_WIRE_VERSION = "a1"
_KEY_LABEL = b"accord change bus v1"
_BODY_AT = len(_WIRE_VERSION) + 1 + hashlib.sha256().digest_size * 2 + 1  # past "a1.<hex hmac>."


def claimed_revision(message: str | bytes) -> int | None:
    """The revision a sealed message names, read without verifying it; None if it has no readable one.

    Only for dropping a message whose revision the receiver already has: a forged one is then dropped
    too, which costs nothing, and anything newer is verified by ``open`` as always.
    """
    raw = message.encode() if isinstance(message, str) else message
    if raw[_BODY_AT - 1 : _BODY_AT] != b"." or not raw.startswith(_WIRE_VERSION.encode() + b"."):
        return None
    return peek_revision(raw, _BODY_AT)


class BusAuth:
    """Signs and verifies the messages of one deployment; the deployment is read from the store when first needed."""

    def __init__(self, store: KVStore) -> None:
        self._store = store
        self._deployment: Deployment | None = None
        self._mac_key = b""
        self.rejected = 0

    @property
    def pointer_key(self) -> str:
        """Where this database's deployment id is noted in Redis, for a start while the database is down."""
        return DEPLOYMENT_POINTER_PREFIX + hashlib.sha256(self._store.identity.encode()).hexdigest()

    async def deployment(self) -> Deployment:
        if self._deployment is None:
            deployment = await self._store.deployment()
            self._mac_key = hmac.new(deployment.bus_key, _KEY_LABEL, hashlib.sha256).digest()
            self._deployment = deployment
        return self._deployment

    async def keys(self) -> RedisKeys:
        return RedisKeys((await self.deployment()).id)

    async def seal(self, body: str) -> str:
        """``body`` with its signature in front: ``a1.<hex hmac>.<body>``."""
        deployment = await self.deployment()
        return f"{_WIRE_VERSION}.{self._mac(deployment.id, body)}.{body}"

    async def open(self, message: str | bytes) -> str | None:
        """The body of a correctly signed message; None (counted, logged once) for anything else."""
        deployment = await self.deployment()
        text = message.decode(errors="replace") if isinstance(message, bytes) else message
        version, _, rest = text.partition(".")
        mac, _, body = rest.partition(".")
        if version == _WIRE_VERSION and hmac.compare_digest(mac, self._mac(deployment.id, body)):
            return body
        self.rejected += 1
        if self.rejected == 1 or self.rejected % 1000 == 0:
            log.warning("dropped %d unauthenticated change bus message(s) (bad or missing signature)", self.rejected)
        return None

    def _mac(self, deployment_id: str, body: str) -> str:
        return hmac.new(self._mac_key, f"{deployment_id}\n{body}".encode(), hashlib.sha256).hexdigest()
