"""The sans-I/O data model of ACE: labels, messages, scopes and the strict CBOR codec."""
