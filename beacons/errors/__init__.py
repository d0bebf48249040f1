"""Errors: grouping error events, deciding and delivering alerts."""
