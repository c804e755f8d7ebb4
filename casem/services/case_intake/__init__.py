"""case-intake: the gRPC ingress that validates intake requests and publishes them to `case-intake`."""
