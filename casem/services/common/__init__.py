"""Transport helpers every casem service shares: gRPC status mapping and health, the ops endpoint.

Not a service: the service packages may import it, it imports no service package.
"""
