"""The vault's Redis backend: its scripts, the client's health, and the Redis-over-database implementations."""
