"""A live in-memory copy of a key range of the store, kept current by the bus.

Every capability that reads shared state from memory holds one: LiveConfig (config/), the token
index (auth/), and the registry and KV API to come. See ``replica.Replica``.
"""
