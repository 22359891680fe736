"""A run's output file: its infrastructure writes stdout and stderr there, the worker reads it.

The file is never a pipe: a run whose worker stopped keeps writing without blocking. The
worker echoes new lines on its terminal (``stream_output``) and, when a run crashes, adds
the file's last lines to the run's logs.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

# At most this much is read in one go, so a chatty run cannot stall the worker's loop.
READ_CHUNK = 1 << 20
TAIL_BYTES = 64 * 1024


class OutputFile:
    """Follows the output file at ``path`` (which may not exist yet)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def new_lines(self, *, final: bool = False) -> list[str]:
        """Return the complete lines written since the last call.

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
        return [line.decode(errors="replace").rstrip("\r") for line in lines]

    def tail(self, lines: int = 100) -> list[str]:
        """Return the file's last ``lines`` lines (none when it does not exist)."""
        try:
            with self.path.open("rb") as file:
                file.seek(max(0, os.stat(self.path).st_size - TAIL_BYTES))
                data = file.read()
        except FileNotFoundError:
            return []
        text = data.decode(errors="replace").rstrip("\n")
        return text.splitlines()[-lines:] if text else []

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
