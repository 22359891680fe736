"""A run's logs: the run loggers, ``print`` capture and the engine's output capture.

Records of the loggers ``dockyard.flow_runs`` and ``dockyard.task_runs`` (what
:func:`get_logger` returns) are printed on the console and, inside a run, shipped to the
server with the run's id. ``log_prints=True`` ships what ``print`` writes to standard output
and still prints it. The engine also ships everything the flow writes to ``sys.stdout`` and
``sys.stderr``.
"""

from __future__ import annotations

import builtins
import logging
import sys
import threading
import time
from typing import IO, Any

from dockyard.sdk.context import FLOW_RUN, TASK_RUN

__all__ = ["capture_output", "get_logger", "install", "ship"]

FLOW_LOGGER = "dockyard.flow_runs"
TASK_LOGGER = "dockyard.task_runs"
MAX_MESSAGE_CHARS = 100_000

_installed = False
_install_lock = threading.Lock()
_original_print = builtins.print
# True while the engine captures sys.stdout/sys.stderr: prints are shipped by that capture.
_capturing_output = False


def get_logger(name: str | None = None) -> logging.Logger:
    """Return a logger whose records go to the current run's logs (and the console).

    Inside a task run it is ``dockyard.task_runs``, elsewhere ``dockyard.flow_runs``;
    ``name`` adds a suffix (``dockyard.flow_runs.<name>``). Outside any run it is the same
    logger: its records are printed but not shipped, and nothing warns about it.
    """
    install()
    base = TASK_LOGGER if TASK_RUN.get() is not None else FLOW_LOGGER
    return logging.getLogger(f"{base}.{name}" if name else base)


def ship(level: int, name: str, message: str, created: float | None = None) -> None:
    """Send one log line to the current run's logs (nothing outside a run)."""
    task_run = TASK_RUN.get()
    flow_run = task_run.flow_run if task_run is not None else FLOW_RUN.get()
    if flow_run is None:
        return
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[:MAX_MESSAGE_CHARS] + " ... (cut)"
    flow_run.tracker.add_log(
        (
            flow_run.handle.id_text,
            task_run.id if task_run is not None else None,
            level,
            name,
            message,
            time.time() if created is None else created,
        )
    )


class RunLogHandler(logging.Handler):
    """Ships each record to the logs of the run in whose context it was emitted."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message = f"{message}\n{_formatter.formatException(record.exc_info)}"
            ship(record.levelno, record.name, message, record.created)
        except Exception:
            self.handleError(record)


class ConsoleFormatter(logging.Formatter):
    """``12:00:01.123 | INFO    | Flow run 'crimson-otter' - message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        label = _run_label()
        if label:
            head, sep, rest = text.partition(" | ")
            level, sep2, message = rest.partition(" | ")
            text = f"{head}{sep}{level}{sep2}{label} - {message}"
        return text


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints run logs on the process's real standard error (never a captured stream)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(ConsoleFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = _real_stream(sys.stderr)
        super().emit(record)


def _run_label() -> str:
    task_run = TASK_RUN.get()
    if task_run is not None:
        return f"Task run {task_run.task_run_name!r}"
    flow_run = FLOW_RUN.get()
    return f"Flow run {flow_run.handle.name!r}" if flow_run is not None else ""


_formatter = logging.Formatter()


def install() -> None:
    """Set up the run loggers once per process: ship to the run, print on the console."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        shipper, console = RunLogHandler(), ConsoleHandler()
        for name in (FLOW_LOGGER, TASK_LOGGER):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
            logger.addHandler(shipper)
            logger.addHandler(console)
            logger.propagate = False
        _installed = True


# ---------------------------------------------------------------- print capture


def capture_prints() -> None:
    """Make ``print`` also ship its line in runs with ``log_prints`` (installed once)."""
    if builtins.print is not _captured_print:
        builtins.print = _captured_print


def _captured_print(
    *values: object,
    sep: str | None = " ",
    end: str | None = "\n",
    file: Any = None,
    flush: bool = False,
) -> None:
    _original_print(*values, sep=sep, end=end, file=file, flush=flush)
    if _capturing_output or (file is not None and file is not sys.stdout):
        return
    run = TASK_RUN.get() or FLOW_RUN.get()
    if run is None or not run.log_prints:
        return
    logger = TASK_LOGGER if TASK_RUN.get() is not None else FLOW_LOGGER
    ship(logging.INFO, logger, (" " if sep is None else sep).join(map(str, values)))


# ---------------------------------------------------------------- output capture (engine)


class _Capture:
    """A text stream that writes through to ``original`` and ships each complete line."""

    def __init__(self, original: IO[str], level: int, name: str) -> None:
        self.dockyard_original = original
        self._level = level
        self._name = name
        self._partial = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        """Write ``text`` through, and ship each line it completes."""
        written = self.dockyard_original.write(text)
        with self._lock:
            lines = (self._partial + text).split("\n")
            self._partial = lines.pop()
        for line in lines:
            ship(self._level, self._name, line.rstrip("\r"))
        return written

    def writelines(self, lines: list[str]) -> None:
        """Write each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Flush the original stream."""
        self.dockyard_original.flush()

    def finish(self) -> None:
        """Ship a last line that did not end with a newline."""
        with self._lock:
            rest, self._partial = self._partial, ""
        if rest:
            ship(self._level, self._name, rest)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.dockyard_original, name)


def _real_stream(stream: Any) -> Any:
    return getattr(stream, "dockyard_original", stream)


class capture_output:
    """Inside ``with capture_output():`` lines written to sys.stdout/sys.stderr are shipped.

    They still reach the original streams. Used by the engine around a deployed flow run.
    """

    def __enter__(self) -> None:
        global _capturing_output
        self._out = _Capture(sys.stdout, logging.INFO, "stdout")
        self._err = _Capture(sys.stderr, logging.WARNING, "stderr")
        sys.stdout, sys.stderr = self._out, self._err
        _capturing_output = True

    def __exit__(self, *exc: object) -> None:
        global _capturing_output
        self._out.finish()
        self._err.finish()
        sys.stdout, sys.stderr = self._out.dockyard_original, self._err.dockyard_original
        _capturing_output = False
