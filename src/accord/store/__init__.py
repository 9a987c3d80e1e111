"""The versioned KV store: the single source of truth every other component reads from."""
