"""How many records one request may carry: the limits a server takes, and batches within them.

A server refuses a body over ``DOCKYARD_SERVER_MAX_BODY_BYTES`` (at least 1 MiB) and a
batch of more than :data:`MAX_ITEMS` records. Clients cut their batches at half the smallest
body a server may be set to take, with a size bound that holds whatever the text holds (JSON
escapes a character outside ASCII as up to 6 bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

__all__ = ["MAX_BYTES", "MAX_ITEMS", "batches", "size_bound"]

MAX_ITEMS = 1000
MAX_BYTES = 512 * 1024
_PER_VALUE = 24  # a key, its quotes and punctuation, or a number
T = TypeVar("T")


def size_bound(record: dict[str, Any]) -> int:
    """More bytes than ``record`` (flat: text, numbers, None, short lists) takes as JSON."""
    size = 2
    for value in record.values():
        if isinstance(value, str):
            size += _PER_VALUE + 6 * len(value)
        elif isinstance(value, list):
            size += _PER_VALUE + sum(_PER_VALUE + 6 * len(str(item)) for item in value)
        else:
            size += _PER_VALUE * 2
    return size


def batches(
    records: Iterable[T],
    size: Callable[[T], int],
    max_items: int = MAX_ITEMS,
    max_bytes: int = MAX_BYTES,
) -> Iterator[list[T]]:
    """``records`` in order, in batches of at most ``max_items`` and ``max_bytes`` as
    ``size`` bounds them (a record larger than that is a batch of its own)."""
    batch: list[T] = []
    total = 0
    for record in records:
        cost = size(record)
        if batch and (len(batch) >= max_items or total + cost > max_bytes):
            yield batch
            batch, total = [], 0
        batch.append(record)
        total += cost
    if batch:
        yield batch
