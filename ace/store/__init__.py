"""Persistence for the AS (and later RS): Protocols, SQLite (default) and in-memory stores."""
