"""``with tags("etl", "nightly"):``: tags for every flow and task run started inside.

The tags in effect live in a context variable, so they follow the code that runs inside the
block: submitted tasks (their threads copy the context) and ``async`` code alike. Blocks
nest; a run's tags are its flow's or task's own ``tags=`` followed by those of every
enclosing block, each once, in order.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar, Token
from types import TracebackType

__all__ = ["current_tags", "merge_tags", "tags"]

_TAGS: ContextVar[tuple[str, ...]] = ContextVar("dockyard_tags", default=())


# current_tags(): the tags of the enclosing `tags(...)` blocks (empty outside any). The
# context variable's own method: every task call asks, so it costs no Python frame.
current_tags = _TAGS.get


def merge_tags(own: tuple[str, ...], extra: Iterable[str]) -> tuple[str, ...]:
    """Return ``own`` followed by the tags of ``extra`` it does not hold yet."""
    merged = list(own)
    for tag in extra:
        if tag not in merged:
            merged.append(tag)
    return tuple(merged)


class tags:
    """Give every flow and task run started inside the block these tags as well.

    ::

        with tags("etl", "nightly") as current:
            my_flow()  # its run, and the runs of its tasks, are tagged etl and nightly

    ``current`` is the set of all tags in effect inside the block (those of enclosing
    blocks too).

    Raises:
        ValueError: a tag is not a string.
    """

    __slots__ = ("_tags", "_token")

    def __init__(self, *new_tags: str) -> None:
        for tag in new_tags:
            if not isinstance(tag, str):
                raise ValueError(f"tags must be strings, not {tag!r}")
        self._tags = new_tags
        self._token: Token[tuple[str, ...]] | None = None

    def __enter__(self) -> set[str]:
        merged = merge_tags(_TAGS.get(), self._tags)
        self._token = _TAGS.set(merged)
        return set(merged)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._token is not None:
            _TAGS.reset(self._token)
            self._token = None

    def __repr__(self) -> str:
        return f"tags({', '.join(map(repr, self._tags))})"
