"""Structured logs (JSON lines via structlog) shared by every casem service."""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure_logging(service: str, level: str | None = None) -> None:
    """JSON logs to stderr, one object per line, with the service name and ISO timestamps."""
    global _configured
    if _configured:
        return
    level_name = (level or os.environ.get("CASEM_LOG_LEVEL", "INFO")).upper()
    logging.basicConfig(stream=sys.stderr, level=level_name, format="%(message)s")
    for chatty in ("alembic", "httpx", "aiosqlite"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            # Never render local variables: they may hold secrets, and ORM objects that lazy-load.
            structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level_name)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
    _configured = True
