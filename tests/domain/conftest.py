"""Domain tests are pure: no database, network or event loop. Hypothesis keeps no example database on disk
(the suite runs from many worktrees) and has no deadline (the machine is shared, timings vary)."""

from __future__ import annotations

from hypothesis import settings

settings.register_profile("domain", database=None, deadline=None, max_examples=200)
settings.load_profile("domain")
