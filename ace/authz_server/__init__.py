"""The Authorization Server core (RFC 9200 §5.8): token endpoint, grants, policy."""
