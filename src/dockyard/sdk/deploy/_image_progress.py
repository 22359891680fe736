"""Showing an image build or push as it goes, from the Docker API's stream of JSON messages.

On a terminal a live status line names the current step; elsewhere (a log, CI) each step is
printed as one plain line. A build remembers the output of its current step, so a failure
can show the step that failed and what it printed.
"""

from __future__ import annotations

import re
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.status import Status

__all__ = ["BuildProgress", "PushProgress"]

STEP = re.compile(r"^Step \d+/\d+ : ")
BUILT = re.compile(r"^Successfully built ([0-9a-f]+)$")
OUTPUT_LINES = 60  # of the failing step, shown and kept on the error


class _Progress:
    """A live status line (on a terminal) plus lines printed above it."""

    def __init__(self, title: str, console: Console | None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.title = title
        self._status: Status | None = None

    def __enter__(self) -> _Progress:
        if self.console.is_terminal:
            self._status = self.console.status(escape(self.title))
            self._status.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def show(self, current: str) -> None:
        """Put ``current`` on the status line (a plain line where there is none)."""
        if self._status is not None:
            self._status.update(f"{escape(self.title)}: [bold]{escape(current)}[/]")
        else:
            self.console.print(f"  {escape(current)}", soft_wrap=True)

    def say(self, text: str) -> None:
        self.console.print(text, soft_wrap=True)


class BuildProgress(_Progress):
    """Feeds on the messages of ``APIClient.build(decode=True)``."""

    def __init__(self, reference: str, console: Console | None = None) -> None:
        super().__init__(f"Building image {reference}", console)
        self.image_id: str | None = None
        self.error: str | None = None
        self.step: str | None = None
        self.output: list[str] = []
        self._partial = ""

    def feed(self, message: dict[str, Any]) -> None:
        if "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail") or {}
            self.error = str(message.get("error") or detail.get("message") or "unknown error")
            return
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            self.image_id = str(aux["ID"])
        if "stream" in message:
            self._lines(str(message["stream"]))
        elif message.get("status"):  # pulling the base image
            layer = f" {message['id']}" if message.get("id") else ""
            if self._status is not None:
                self.show(f"{self.step or 'FROM'} ({message['status']}{layer})")

    def _lines(self, text: str) -> None:
        *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            line = line.rstrip("\r")
            built = BUILT.match(line.strip())
            if built and self.image_id is None:
                self.image_id = built.group(1)
            elif STEP.match(line):
                self.step = line
                self.output = []
                self.show(line)
            elif line.strip() and not line.startswith(
                (" ---> ", "Removing intermediate", "Successfully")
            ):
                self.output.append(line)
                del self.output[:-OUTPUT_LINES]

    def failed(self) -> None:
        """Show the failing step and what it printed (call outside the ``with`` block)."""
        if self._partial.strip():
            self.output.append(self._partial)
        self.say(f"[red]Building image failed[/] at {escape(self.step or 'its start')}")
        for line in self.output:
            self.say(f"  [dim]|[/] {escape(line)}")
        self.say(f"[red]{escape(self.error or '')}[/]")


class PushProgress(_Progress):
    """Feeds on the messages of ``APIClient.push(stream=True, decode=True)``."""

    def __init__(self, reference: str, console: Console | None = None) -> None:
        super().__init__(f"Pushing image {reference}", console)
        self.error: str | None = None
        self.digest: str | None = None

    def feed(self, message: dict[str, Any]) -> None:
        if "error" in message or "errorDetail" in message:
            detail = message.get("errorDetail") or {}
            self.error = str(message.get("error") or detail.get("message") or "unknown error")
            return
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("Digest"):
            self.digest = str(aux["Digest"])
        status = message.get("status")
        if status and self._status is not None:
            layer = f"{message['id']}: " if message.get("id") else ""
            self.show(f"{layer}{status}")
