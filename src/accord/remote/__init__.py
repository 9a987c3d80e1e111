"""Remote client mode: a replica fed by accord servers over HTTP instead of the database and a bus (docs/remote.md)."""
