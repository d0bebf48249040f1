"""Counting: bucket math, counter increments and upserts, the Redis counter format, sinks, drain, retention."""
