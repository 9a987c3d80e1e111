"""Redis URLs without importing redis: which one applies, whether it names a cluster, and how to print it.

Kept apart from ``redis_conn`` so deciding that there is no Redis (a CLI on SQLite) never imports redis-py.
A ``redis+cluster://`` (or ``rediss+cluster://``) URL names a Redis Cluster by one or more start-up nodes,
``redis+cluster://[user:password@]host:port[,host:port...][/0][?options]`` (docs/redis-cluster.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from accord.core import environ
from accord.core.errors import InputError

CLUSTER_SCHEMES = {"redis+cluster": "redis", "rediss+cluster": "rediss"}
PLAIN_SCHEMES = frozenset({"redis", "rediss", "unix"})


@dataclass(frozen=True, slots=True)
class ClusterUrl:
    """A cluster URL taken apart: start-up nodes, and a ``redis://`` URL of the first one for the options."""

    nodes: tuple[tuple[str, int], ...]
    first_node_url: str


def resolve_redis_url(url: str | None) -> str | None:
    """An explicit URL, else ``ACCORD_REDIS_URL``; an empty string means "no Redis"."""
    if url is not None:
        return url or None
    return environ.current().redis_url


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].lower() in CLUSTER_SCHEMES


def parse_cluster_url(url: str) -> ClusterUrl:
    """The start-up nodes of a ``redis+cluster://`` URL; InputError (naming the URL, password hidden) if unusable."""
    scheme, _, rest = url.partition("://")
    plain = CLUSTER_SCHEMES.get(scheme.lower())
    if plain is None:
        raise InputError(f"not a Redis Cluster URL (redis+cluster:// or rediss+cluster://): {redact_redis(url)}")
    parts = urlsplit(f"{plain}://{rest}")
    credentials, _, hosts = parts.netloc.rpartition("@")
    if parts.path not in ("", "/", "/0"):
        raise InputError(
            f"a Redis Cluster has database 0 only; drop {parts.path!r} from the Redis URL {redact_redis(url)}"
        )
    nodes = tuple(_node(address, url) for address in hosts.split(",") if address)
    if not nodes:
        raise InputError(f"a Redis Cluster URL needs at least one host:port: {redact_redis(url)}")
    login = f"{credentials}@" if credentials else ""
    query = f"?{parts.query}" if parts.query else ""
    host, port = nodes[0]
    return ClusterUrl(nodes, f"{plain}://{login}{host}:{port}/0{query}")


def validate_redis_url(url: str) -> None:
    """Refuse, without connecting, a URL no Redis client of accord could use."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme in CLUSTER_SCHEMES:
        parse_cluster_url(url)
    elif scheme not in PLAIN_SCHEMES:
        raise InputError(
            f"a Redis URL must start with redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://: "
            f"{redact_redis(url)}"
        )


def redact_redis(url: str) -> str:
    """The URL without its password, for logs and errors."""
    if "@" not in url:
        return url
    scheme, rest = url.split("://", 1) if "://" in url else ("redis", url)
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _node(address: str, url: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"a Redis Cluster node must be host:port, got {address!r} in {redact_redis(url)}")
    return host.strip("[]"), int(port)
