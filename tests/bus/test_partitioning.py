from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _java_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 transcribed line by line (Java ints emulated), one 4-byte word at a time."""
    seed, m, r = 0x9747B28C, 0x5BD1E995, 24
    mask = 0xFFFFFFFF
    length = len(data)
    h = (seed ^ length) & mask
    for i in range(length // 4):
        i4 = i * 4
        k = data[i4] | data[i4 + 1] << 8 | data[i4 + 2] << 16 | data[i4 + 3] << 24
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h = (h * m) & mask
        h ^= k
    rest, tail = length % 4, length & ~3
    if rest >= 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * m) & mask
    h ^= h >> 13
    h = (h * m) & mask
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


@given(st.binary(max_size=200))
def test_murmur2_is_kafkas_for_any_key(key: bytes) -> None:
    assert murmur2(key) == _java_murmur2(key)


def test_partition_for_is_stable_and_in_range() -> None:
    keys = [f"case-{i}".encode() for i in range(1000)]
    first = [partition_for(k, 12) for k in keys]
    assert first == [partition_for(k, 12) for k in keys]
    assert set(first) == set(range(12))  # spreads over every partition
    assert all(0 <= partition_for(None, 3) < 3 for _ in range(50))
    with pytest.raises(ValueError):
        partition_for(b"k", 0)
