"""Change propagation: how a committed write reaches every other process."""
