"""The stats API: keys, the query language over ``beacons.queries``, and its HTTP endpoints."""
