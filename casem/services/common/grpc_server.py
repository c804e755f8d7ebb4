"""Options every casem gRPC server is created with."""

from __future__ import annotations

MAX_MESSAGE_BYTES = 8 * 1024 * 1024  # descriptions are up to 30k characters; timelines page up to 1000 cells


def server_options(*, receive_bytes: int = MAX_MESSAGE_BYTES) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", receive_bytes),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        # gRPC turns SO_REUSEPORT on by default: a second server on a taken port then binds silently and
        # the kernel splits connections between the two (one instance answering with the other's keys).
        ("grpc.so_reuseport", 0),
    ]


def server_interceptors() -> list[object]:
    """Interceptors every casem gRPC server runs: a span per call (casem/services/common/tracing.py)."""
    from casem.services.common.tracing import GrpcTracing

    return [GrpcTracing()]
