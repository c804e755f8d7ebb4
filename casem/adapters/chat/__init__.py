"""Chat platforms' outbound APIs (Slack Web API), called through the guarded HTTP client."""
