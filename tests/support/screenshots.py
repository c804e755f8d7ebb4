"""Where the browser suites write their screenshots."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def screenshot_dir() -> Path:
    """Where the browser tests write their screenshots (var/console-screenshots unless told otherwise)."""
    path = Path(os.environ.get("CASEM_SCREENSHOT_DIR") or ROOT / "var" / "console-screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path
