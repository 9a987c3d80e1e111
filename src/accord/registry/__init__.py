"""The registry capability: service discovery, health checks, sessions, the fleet view."""
