"""The client's side of the A–F flow as a sans-I/O state machine (events in, actions out)."""
