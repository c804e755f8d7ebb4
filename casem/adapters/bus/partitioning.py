"""Key to partition: the one stable hash both adapters use.

It is Kafka's own default partitioner (murmur2 of the key bytes, made positive, modulo the
partition count), so a key lands on the same partition whether a message is written by
casem's Kafka adapter (librdkafka's `murmur2_random`), by a Java client, or by the embedded
log: moving a deployment between buses keeps per-key order.
"""

from __future__ import annotations

import functools
import random
import struct
from collections.abc import Callable

_MASK = 0xFFFFFFFF
_SEED = 0x9747B28C
_M = 0x5BD1E995


@functools.cache
def _words(count: int) -> Callable[[bytes], tuple[int, ...]]:
    """Reads a key's first `count` 4-byte little-endian words at once (the hash's inner loop then does no slicing)."""
    return struct.Struct(f"<{count}I").unpack_from


def murmur2(data: bytes) -> int:
    """Kafka's `Utils.murmur2`, returned as Java's signed 32-bit int. (Run for every message written to the embedded
    bus: reading the words at once and folding each one into the hash in one expression halved its cost.)"""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    count = length >> 2
    for k in _words(count)(data):
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ (((k ^ (k >> 24)) * _M) & _MASK)
    tail = count << 2
    rest = length & 3
    if rest == 3:
        h ^= data[tail + 2] << 16
    if rest >= 2:
        h ^= data[tail + 1] << 8
    if rest >= 1:
        h ^= data[tail]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes | None, partitions: int) -> int:
    """The partition of a key; a message without a key goes to a random partition."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    if key is None:
        return random.randrange(partitions)
    return (murmur2(key) & 0x7FFFFFFF) % partitions
