from __future__ import annotations

import pytest

from casem.adapters.bus.partitioning import murmur2, partition_for


@pytest.mark.parametrize(
    ("key", "expected"),
    [  # Kafka's Utils.murmur2 reference values (its UtilsTest)
        (b"21", -973932308),
        (b"foobar", -790332482),
        (b"a-little-bit-long-string", -985981536),
        (b"a-little-bit-longer-string", -1486304829),
        (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
        (b"abc", 479470107),
    ],
)
def test_murmur2_matches_kafka(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


def test_partition_for_is_stable_and_in_range() -> None:
    keys = [f"case-{i}".encode() for i in range(1000)]
    first = [partition_for(k, 12) for k in keys]
    assert first == [partition_for(k, 12) for k in keys]
    assert set(first) == set(range(12))  # spreads over every partition
    assert all(0 <= partition_for(None, 3) < 3 for _ in range(50))
    with pytest.raises(ValueError):
        partition_for(b"k", 0)
