"""casem: self-hostable Case Management, wire-compatible with Datadog's Case Management API v2."""

__version__ = "0.1.0"
