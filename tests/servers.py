"""Old import path of the harness, kept only while branches written against it are merged: import `tests.harness`."""

from tests.harness import PostgresDatabase, PostgresServer, RedisServer, ServerError, free_port, port_in_use

__all__ = ["PostgresDatabase", "PostgresServer", "RedisServer", "ServerError", "free_port", "port_in_use"]
