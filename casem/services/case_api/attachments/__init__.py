"""Attachments on cases: casem's own endpoints beside the Datadog-compatible ones."""
