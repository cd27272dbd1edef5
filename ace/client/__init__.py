"""The client's side of the A–F flow as a sans-I/O state machine (events in, actions out), and the
audience pins it keeps per RS origin (``pins``: RFC 9200 §6.9)."""
