"""The Resource Server core (RFC 9200 §5.10): authz-info, token store, access decisions."""
