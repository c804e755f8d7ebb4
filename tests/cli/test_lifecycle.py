"""A stop signal during start-up ends `casem up` as a stop, wherever it lands: also inside a database statement,
where SQLAlchemy wraps an ordinary exception raised while it prepares the statement in StatementError, and the
stop read as a crash (seen in CI: SIGTERM during the migrations' CREATE TABLE)."""

from __future__ import annotations

import os
import signal
import sqlite3
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine
from sqlalchemy.schema import CreateTable

from casem.cli.lifecycle import Interrupted, interruptible_startup


class SignalOnNextCursor(sqlite3.Connection):
    """Sends itself a signal when SQLAlchemy asks for a cursor: while it builds the execution context."""

    armed: signal.Signals | None = None

    def cursor(self, *args: Any, **kwargs: Any) -> sqlite3.Cursor:
        if self.armed is not None:
            sig, self.armed = self.armed, None
            os.kill(os.getpid(), sig)  # the handler runs here, in the main thread, before cursor() returns
        return super().cursor(*args, **kwargs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_a_statement_is_prepared_comes_out_as_interrupted(sig: signal.Signals) -> None:
    engine = create_engine("sqlite://", creator=lambda: sqlite3.connect(":memory:", factory=SignalOnNextCursor))
    table = Table("users", MetaData(), Column("id", Integer, primary_key=True))
    try:
        with pytest.raises(Interrupted) as raised, interruptible_startup(), engine.connect() as connection:
            connection.connection.dbapi_connection.armed = sig  # type: ignore[union-attr]
            connection.execute(CreateTable(table))
        assert str(raised.value) == sig.name
    finally:
        engine.dispose()


def test_the_previous_handlers_come_back_after_start_up() -> None:
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    with interruptible_startup():
        assert signal.getsignal(signal.SIGTERM) not in before
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
