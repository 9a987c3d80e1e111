"""The HTTP server: a thin shell over the capability packages (no business logic here)."""
