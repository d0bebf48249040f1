"""Feature flags and A/B experiments: definitions, evaluation, exposures and statistics."""
