"""The master keys: where they come from, and rotating them across every capability that seals data."""
