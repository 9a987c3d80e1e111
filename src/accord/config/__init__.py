"""Typed settings over the versioned store, live in every process."""
