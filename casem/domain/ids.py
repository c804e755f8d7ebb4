"""New random identifiers (UUID version 4, in their canonical text), made in bulk.

`str(uuid.uuid4())` builds a UUID object per identifier; batch creation needs three per case (the case, its event
and its timeline cell). These are the same identifiers, from the same source (os.urandom, 122 random bits with the
version and variant bits set as RFC 9562 says), formatted from one read of random bytes per few hundred.
"""

from __future__ import annotations

import os

_PER_READ = 256
_VARIANT = "89ab"  # the variant's two top bits are 10: the 17th hex digit is one of these
_pool: list[str] = []  # list.pop and list.extend are atomic: threads may share it


def _fresh(count: int) -> list[str]:
    hexed = os.urandom(16 * count).hex()
    return [
        f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"
        for h in (hexed[i : i + 32] for i in range(0, 32 * count, 32))
    ]


def new_id() -> str:
    """A new random UUID (version 4) as text, like str(uuid.uuid4())."""
    try:
        return _pool.pop()
    except IndexError:
        _pool.extend(_fresh(_PER_READ))
        return _pool.pop()


# A forked child must not hand out the identifiers its parent may also hand out.
os.register_at_fork(after_in_child=_pool.clear)
