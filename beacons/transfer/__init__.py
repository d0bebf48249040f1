"""Transfer: counts and event types in and out as files (formats, imports, admin resources)."""
