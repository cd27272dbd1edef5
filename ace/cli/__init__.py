"""The ``ace`` command line."""
