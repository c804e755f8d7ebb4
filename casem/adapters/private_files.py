"""Files only casem's own user may read: 0700 directories and 0600 files for everything casem keeps on disk.

The data directory (CASEM_DATA_DIR, `./var` by default) holds every tenant's database, the embedded bus
log, the search indexes, attachment blobs and the keys that open stored secrets. Each adapter creates its
files through `private_file` / `private_directory` (modes set at creation, not chmod-ed afterwards, so
there is no moment when another user could open them), and narrows what an older casem created with
looser modes. SQLite creates a database's -wal and -shm files with the database file's mode.

Directories outside the data directory that casem did not create (a DSN pointing at a shared folder)
keep their mode; casem's own files in them are still 0600.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO

from casem.topology.tenants import data_dir

DIRECTORY_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDECARS = ("-wal", "-shm", "-journal")


def _narrow(path: Path, mode: int) -> None:
    with contextlib.suppress(FileNotFoundError, PermissionError):  # not ours: leave it as it is
        if path.stat().st_mode & 0o777 != mode:
            os.chmod(path, mode)


def private_directory(path: Path | str, *, root: Path | None = None) -> Path:
    """`path` as a directory: missing ones are created 0700, and those inside the data directory `root`
    (CASEM_DATA_DIR by default), and that directory itself, are narrowed to 0700."""
    path = Path(path).absolute()
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            directory.mkdir(mode=DIRECTORY_MODE)
        _narrow(directory, DIRECTORY_MODE)  # mkdir's mode is masked by the umask
    root = (root or data_dir()).absolute()
    for directory in (path, *path.parents):
        if directory == root or root in directory.parents:
            _narrow(directory, DIRECTORY_MODE)
    return path


def private_file(path: Path | str, *, sidecars: tuple[str, ...] = ()) -> Path:
    """Create `path` empty (0600) unless it exists, else narrow it to 0600; its directory as `private_directory`.

    `sidecars` are suffixes of companion files narrowed too when they exist (SQLite's `-wal`, `-shm`)."""
    path = Path(path).absolute()
    private_directory(path.parent)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
    _narrow(path, FILE_MODE)
    for suffix in sidecars:
        _narrow(path.with_name(path.name + suffix), FILE_MODE)
    return path


def private_sqlite_file(path: Path | str) -> Path:
    """A SQLite database file and its journal files, 0600 in a 0700 directory."""
    return private_file(path, sidecars=SQLITE_SIDECARS)


def open_private(path: Path | str, mode: str = "wb", *, exclusive: bool = True) -> IO[bytes]:
    """Open a new file for writing with mode 0600 from its creation (O_EXCL unless `exclusive` is off)."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    return os.fdopen(os.open(path, flags, FILE_MODE), mode)
