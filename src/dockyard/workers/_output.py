"""A run's output file: its infrastructure writes stdout and stderr there, the worker reads it.

The file is never a pipe: a run whose worker stopped keeps writing without blocking. The
worker reads it three ways:

- :meth:`OutputFile.new_lines`: the lines written since the last call, to echo on its
  terminal (``stream_output``);
- :meth:`OutputFile.last_lines`: the end of the file (at most :data:`SHIP_BYTES`), to add
  to the logs of a run whose engine did not ship them;
- :meth:`OutputFile.handed_over`: the final state an engine could not report and handed to
  the worker: the last line that starts with :data:`FINAL_STATE_MARKER` (the engine's
  ``dockyard.sdk.engine.hand_over`` writes it; a test keeps both sides in step).

Hand-over lines carry the run's lease token: they are never echoed nor shipped.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from dockyard._values import clean_text

FINAL_STATE_MARKER = "::dockyard-final-state::"
_MARKER = FINAL_STATE_MARKER.encode()
# At most this much is read in one go, so a chatty run cannot stall the worker's loop.
READ_CHUNK = 1 << 20
# The end of the file that may be shipped as logs, and the longest line shipped whole.
SHIP_BYTES = 4 << 20
MAX_LINE_CHARS = 10_000
# A hand-over line holds a result of up to 1 MiB of JSON; the engine writes it last.
MARKER_SCAN_BYTES = 4 << 20


class OutputFile:
    """Follows the output file at ``path`` (which may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def new_lines(self, *, final: bool = False) -> list[str]:
        """Return the complete lines written since the last call (hand-over lines left out).

        ``final``: the writer has exited; a last line without a newline is returned too.
        """
        try:
            if os.stat(self.path).st_size > self._offset:
                with self.path.open("rb") as file:
                    file.seek(self._offset)
                    data = file.read(READ_CHUNK)
                    self._offset += len(data)
            else:
                data = b""
        except FileNotFoundError:
            data = b""
        *lines, self._partial = (self._partial + data).split(b"\n")
        if final and self._partial:
            lines.append(self._partial)
            self._partial = b""
        return [_text(line) for line in lines if not line.startswith(_MARKER)]

    def last_lines(self, max_bytes: int = SHIP_BYTES) -> tuple[int, list[str]]:
        """Return how many bytes of the file's start are left out, and its last lines.

        At most ``max_bytes`` are read (from a line's start); hand-over lines are left out,
        and a line over :data:`MAX_LINE_CHARS` characters is cut.
        """
        # one byte more than asked: whether the window starts a line shows in it
        data, skipped = self._end(max_bytes + 1)
        if skipped:
            cut = data.find(b"\n") + 1  # up to the first line that is whole
            skipped += cut
            data = data[cut:]
        lines = []
        for raw in data.split(b"\n"):
            if raw.startswith(_MARKER):
                continue
            line = _text(raw)
            if len(line) > MAX_LINE_CHARS:
                line = f"{line[:MAX_LINE_CHARS]} ... ({len(line) - MAX_LINE_CHARS} characters cut)"
            lines.append(line)
        while lines and not lines[-1]:
            lines.pop()
        return skipped, lines

    def handed_over(self) -> dict[str, Any] | None:
        """Return the last final state handed over in the file (its JSON), if there is one."""
        data, _ = self._end(MARKER_SCAN_BYTES)
        at = data.rfind(b"\n" + _MARKER)
        if at >= 0:
            at += 1
        elif not data.startswith(_MARKER):
            return None
        else:
            at = 0
        line = data[at + len(_MARKER) :].split(b"\n", 1)[0]
        try:
            record = json.loads(line)
        except ValueError:
            return None  # cut short (the process died while writing it): nothing handed over
        return record if isinstance(record, dict) else None

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _end(self, max_bytes: int) -> tuple[bytes, int]:
        """The file's last ``max_bytes`` bytes, and how many come before them."""
        try:
            with self.path.open("rb") as file:
                size = os.fstat(file.fileno()).st_size
                start = max(0, size - max_bytes)
                file.seek(start)
                return file.read(max_bytes), start
        except FileNotFoundError:
            return b"", 0


def _text(line: bytes) -> str:
    # what the server stores: a NUL a process wrote must not make its whole batch refused
    return clean_text(line.decode(errors="replace").rstrip("\r"))
