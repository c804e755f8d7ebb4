"""Temporal wiring: the client, the caseworker's worker, and a dev server launcher for `casem up`."""
