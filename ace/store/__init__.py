"""Persistence: records and role Protocols (``base``), the AS's SQLite (default) and in-memory
stores, and the RS's and client's files (``seqno``, ``pins``)."""
