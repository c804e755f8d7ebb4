"""Is this error an engine being away (retry later), rather than something wrong with the request?

One answer for every adapter, so each edge maps an outage the same way: HTTP 503 with Retry-After, gRPC
UNAVAILABLE with RetryInfo, a consumer that waits instead of dead-lettering, a relay that backs off.
"""

from __future__ import annotations

import errno
import socket

import sqlalchemy.exc

from casem.adapters.bus.port import BusUnavailable
from casem.adapters.search.port import SearchBackendError

# Driver errors (by class name, so no driver is imported here) that mean the database server is away.
_DRIVER_OUTAGES = frozenset({"ConnectionDoesNotExistError", "ConnectionFailureError", "ConnectionRejectionError"})
# SQLSTATE classes: 08 connection exception, 57P operator intervention (shutdown, cannot connect now),
# 53 insufficient resources (too many connections...).
_SQLSTATE_OUTAGES = ("08", "57P", "53")
_NETWORK_ERRNOS = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ETIMEDOUT, errno.EADDRNOTAVAIL})
# Temporal's RPC status codes (temporalio.service.RPCStatusCode) for "the service is not answering".
_TEMPORAL_OUTAGES = frozenset({"UNAVAILABLE", "DEADLINE_EXCEEDED"})


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _one_is_unavailable(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError | socket.gaierror):  # refused, reset, timed out, DNS
        return True
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return True
    if isinstance(exc, BusUnavailable):
        return True
    if isinstance(exc, SearchBackendError):
        return exc.unavailable
    if isinstance(exc, sqlalchemy.exc.DBAPIError) and exc.connection_invalidated:
        return True
    if isinstance(exc, sqlalchemy.exc.TimeoutError | sqlalchemy.exc.DisconnectionError):  # pool wait, ping
        return True
    sqlstate = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None)
    if isinstance(sqlstate, str) and sqlstate.startswith(_SQLSTATE_OUTAGES):
        return True
    kind = type(exc)
    if kind.__module__.startswith("psycopg") and sqlstate is None:
        # psycopg's client-side errors: "connection failed", "server closed the connection unexpectedly",
        # "the connection is closed". The server's own refusals carry a SQLSTATE and are judged by it above.
        return kind.__name__ in ("OperationalError", "InterfaceError")
    if kind.__module__.startswith("asyncpg") and kind.__name__ in _DRIVER_OUTAGES:
        return True
    if kind.__module__ == "sqlite3" and "database is locked" in str(exc):
        return True
    if kind.__module__.startswith("temporalio") and kind.__name__ == "RPCError":
        return getattr(getattr(exc, "status", None), "name", "") in _TEMPORAL_OUTAGES
    return False


def is_unavailable(exc: BaseException) -> bool:
    """True when `exc` (or what caused it) says an engine could not be reached or cannot serve right now."""
    return any(_one_is_unavailable(e) for e in _chain(exc))
