"""Ingest: the beacon endpoints, parsing and validation, privacy, recording what a request accepted."""
