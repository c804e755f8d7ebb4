"""case-api: the multi-tenant API of the seed, over HTTP (Datadog-compatible JSON:API) and gRPC."""
