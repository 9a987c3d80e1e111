"""The service registry: Consul-shaped KV, sessions, catalog, health checks and the fleet, over the one store."""
