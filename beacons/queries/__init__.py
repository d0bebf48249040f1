"""Every read: counters (series, totals, top pages, live), event types, error groups, exports."""
