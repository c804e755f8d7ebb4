"""Doorbells (casem.adapters.doorbell): a ring from another process wakes a waiter in this one; listening and
closing leave neither a FIFO nor an open fd behind; a FIFO whose process died is removed by the next ring, and so
is one it died making (before renaming it); a writer skips its own process's FIFOs; without FIFOs nothing listens and
ringing is harmless."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from casem.adapters import wakeup
from casem.adapters.doorbell import Doorbells, doorbell_directory, listen


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def run_python(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_a_ring_from_another_process_wakes_a_waiter_here(tmp_path: Path) -> None:
    file = tmp_path / "shared.db"
    woken = wakeup.waiter("test:doorbell")
    listening = listen(file, "test:doorbell")
    try:
        assert listening.active and listening.fifo is not None and listening.fifo.parent == doorbell_directory(file)
        assert listening.fifo.stat().st_mode & 0o777 == 0o600
        assert doorbell_directory(file).stat().st_mode & 0o777 == 0o700
        ringing = asyncio.create_task(
            asyncio.to_thread(
                run_python,
                f"""
                from casem.adapters.doorbell import Doorbells
                bells = Doorbells({str(file)!r})
                bells.ring()
                print(bells.rung)
                """,
            )
        )
        assert await woken.wait(30)
        assert (await ringing).strip() == "1"
    finally:
        listening.close()
        woken.close()


async def test_listening_and_closing_leave_no_fifo_and_no_open_fd(tmp_path: Path) -> None:
    file = tmp_path / "shared.db"
    before = open_fds()
    first, second = listen(file, "test:a"), listen(file, "test:a")  # one FIFO per channel and loop, shared
    other = listen(file, "test:b")
    assert len(os.listdir(doorbell_directory(file))) == 2
    assert first.fifo == second.fifo != other.fifo
    first.close()
    assert second.active and len(os.listdir(doorbell_directory(file))) == 2
    second.close()
    other.close()
    other.close()  # twice is harmless
    await asyncio.sleep(0)
    assert os.listdir(doorbell_directory(file)) == []
    assert open_fds() == before


def test_a_fifo_whose_process_died_is_removed_by_the_next_ring(tmp_path: Path) -> None:
    file = tmp_path / "shared.db"
    fifo = run_python(
        f"""
        import asyncio, os

        from casem.adapters.doorbell import listen

        async def main():
            print(listen({str(file)!r}, "test:gone").fifo, flush=True)
            os._exit(0)  # dies without closing: the FIFO stays behind

        asyncio.run(main())
        """
    ).strip()
    assert os.path.exists(fifo)
    bells = Doorbells(file)
    before = open_fds()
    bells.ring()
    assert not os.path.exists(fifo) and bells.removed == 1 and bells.rung == 0
    assert open_fds() == before
    bells.ring()  # the listing is read again: nothing left to ring
    assert bells.removed == 1 and bells.rung == 0
    bells.close()


def test_a_fifo_whose_process_died_making_it_is_removed_by_the_next_ring(tmp_path: Path) -> None:
    file = tmp_path / "shared.db"
    directory = doorbell_directory(file)
    # Killed between mkfifo and rename: the FIFO keeps the hidden name it was made under, and no ringer rings it.
    leftover = run_python(
        f"""
        import os
        from pathlib import Path

        directory = Path({str(directory)!r})
        directory.mkdir(mode=0o700, exist_ok=True)
        making = directory / f".{{os.getpid()}}-0123456789ab"
        os.mkfifo(making, 0o600)
        print(making)
        """
    ).strip()
    # One this (live) process is making, between its mkfifo and its rename: it must stay.
    being_made = directory / f".{os.getpid()}-ba9876543210"
    os.mkfifo(being_made, 0o600)
    assert os.path.exists(leftover)
    bells = Doorbells(file)
    bells.ring()
    assert not os.path.exists(leftover) and bells.removed == 1 and bells.rung == 0
    assert being_made.exists()
    bells.ring()  # the listing is read again (the removal changed the directory): nothing else goes
    assert bells.removed == 1 and os.listdir(directory) == [being_made.name]
    bells.close()


async def test_a_writer_skips_its_own_process_fifos(tmp_path: Path) -> None:
    file = tmp_path / "shared.db"
    mine = listen(file, "test:mine")
    bells = Doorbells(file)
    try:
        bells.ring()
        assert bells.rung == 0  # the in-process notify wakes this process's waiters
        nobody = Doorbells(tmp_path / "nobody.db")
        nobody.ring()  # nobody ever listened: no directory, and none is made
        assert nobody.rung == 0 and not doorbell_directory(tmp_path / "nobody.db").exists()
    finally:
        mine.close()
        bells.close()


async def test_without_fifos_nothing_listens_and_ringing_is_harmless(tmp_path: Path, fifos_refused: None) -> None:
    file = tmp_path / "shared.db"
    before = open_fds()
    listening = listen(file, "test:none")
    assert not listening.active and listening.fifo is None
    bells = Doorbells(file)
    bells.ring()
    assert bells.rung == 0
    listening.close()
    bells.close()
    assert open_fds() == before
    (tmp_path / "odd.db.doorbells").write_text("a file, not a directory")
    Doorbells(tmp_path / "odd.db").ring()  # cannot list it: logged, not raised
