"""The test harness: real Redis, PostgreSQL, `accord serve`, proxy and echo processes, and the fixtures on them.

Layout: `process` (the managed-process base and `ServerError`), `waiting` (the one polling loop),
`ports`, `redis_server`, `redis_cluster` (a 3-node Redis Cluster), `postgres_server` (+ `os_user`),
`http_process` (anything with /healthz: the proxy and the echo upstream), `accord_server`, `backends`
(sqlite / postgres / postgres_redis), and `plugin`, the pytest plugin holding the fixtures, registered once
by tests/conftest.py.
"""

from tests.harness.accord_server import AccordServer, AccordServers
from tests.harness.backends import BACKENDS, Backend
from tests.harness.http_process import EchoUpstream, HttpProcess, child_env
from tests.harness.ports import free_port, port_in_use
from tests.harness.postgres_server import PostgresDatabase, PostgresServer
from tests.harness.process import ManagedProcess, ServerError, running
from tests.harness.redis_server import RedisServer
from tests.harness.waiting import wait_until

__all__ = [
    "BACKENDS",
    "AccordServer",
    "AccordServers",
    "Backend",
    "EchoUpstream",
    "HttpProcess",
    "ManagedProcess",
    "PostgresDatabase",
    "PostgresServer",
    "RedisServer",
    "ServerError",
    "child_env",
    "free_port",
    "port_in_use",
    "running",
    "wait_until",
]
