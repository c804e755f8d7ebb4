"""Pluggable content scanners run during attachment verification.

A scanner reads the stored bytes and returns a reason to reject the file, or None. Production
deployments plug in their antivirus (e.g. a clamd client) by implementing `Scanner`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol

# The standard antivirus test file: every scanner must flag it, so it proves the hook end to end.
EICAR = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"


class Scanner(Protocol):
    name: str

    async def scan(self, filename: str, content_type: str, chunks: AsyncIterator[bytes]) -> str | None: ...


class EicarScanner:
    """Finds the EICAR signature anywhere in the file, also across chunk boundaries."""

    name = "eicar"

    async def scan(self, filename: str, content_type: str, chunks: AsyncIterator[bytes]) -> str | None:
        tail = b""
        async for chunk in chunks:
            window = tail + chunk
            if EICAR in window:
                return "EICAR test signature found"
            tail = window[-(len(EICAR) - 1) :]
        return None
