"""The vault's database backend: its tables, the statements on them, and the database-only implementations."""
