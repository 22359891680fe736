"""A run's logs: the run loggers, ``print`` capture and the engine's output capture.

The run loggers are ``dockyard.flow_runs`` and ``dockyard.task_runs``. :func:`get_run_logger`
returns the current run's, bound to that run: its records carry the run's fields
(``flow_run_id``, ``flow_run_name``, ``flow_name``; in a task run also ``task_run_id``,
``task_run_name``, ``task_name``). :func:`get_logger` returns the bare logger, which finds the
run from where it is called. Records of both are

- shipped to the server with the run's id (inside a run);
- passed up the standard ``logging`` tree like any logger's: the root logger's handlers (and
  pytest's ``caplog``) see them;
- printed on standard error by the SDK's console handler, unless a handler up the tree
  already prints them on the console (``logging.basicConfig()``, say): then only that one
  does, in its own format. Either way a line is printed once.

``log_prints=True`` makes each ``print`` to standard output an INFO record of the run logger
as well as a printed line. The engine also ships everything the flow writes to ``sys.stdout``
and ``sys.stderr``.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import sys
import threading
import time
from collections.abc import Iterator, MutableMapping
from contextvars import ContextVar
from typing import IO, Any

from dockyard.exceptions import MissingContextError
from dockyard.sdk.runtime import redaction
from dockyard.sdk.runtime.context import FLOW_RUN, TASK_RUN, FlowRunContext, TaskRunContext

__all__ = [
    "RunLogger",
    "capture_output",
    "disable_run_logger",
    "get_logger",
    "get_run_logger",
    "install",
    "ship",
]

FLOW_LOGGER = "dockyard.flow_runs"
TASK_LOGGER = "dockyard.task_runs"
MAX_MESSAGE_CHARS = 100_000
# Marks the record of a print, which was printed as such: the console handler skips it.
PRINT_MARK = "dockyard_print"

Run = FlowRunContext | TaskRunContext

_installed = False
_install_lock = threading.Lock()
_original_print = builtins.print
_silenced: ContextVar[bool] = ContextVar("dockyard_run_logger_silenced", default=False)
# The run a RunLogger emits a record for, while it does: the record is shipped to that run,
# and what handlers up the tree write meanwhile is not shipped again by the engine's capture.
_emitting: ContextVar[Run | None] = ContextVar("dockyard_run_logger_emitting", default=None)


def get_logger(name: str | None = None) -> logging.Logger:
    """Return a logger whose records go to the current run's logs (and the console).

    Inside a task run it is ``dockyard.task_runs``, elsewhere ``dockyard.flow_runs``;
    ``name`` adds a suffix (``dockyard.flow_runs.<name>``). Outside any run it is the same
    logger: its records are printed but not shipped, and nothing warns about it.
    """
    install()
    base = TASK_LOGGER if TASK_RUN.get() is not None else FLOW_LOGGER
    return logging.getLogger(f"{base}.{name}" if name else base)


def get_run_logger(
    context: Run | None = None, **extra: Any
) -> logging.LoggerAdapter[logging.Logger]:
    """Return the logger of the current task run, else of the current flow run.

    Its records carry the run's fields (``flow_run_id``, ``flow_run_name``, ``flow_name``,
    and in a task run ``task_run_id``, ``task_run_name``, ``task_name``) and ``extra``, and
    are shipped to that run even from a thread that does not know the run.

    Args:
        context: the run to log for, instead of the current one.
        extra: more fields for every record.

    Raises:
        MissingContextError: called outside any flow or task run (and outside
            :func:`disable_run_logger`).
    """
    if _silenced.get():
        return _Silent(logging.getLogger(FLOW_LOGGER), {})
    run = context or TASK_RUN.get() or FLOW_RUN.get()
    if run is None:
        raise MissingContextError(
            "get_run_logger() was called outside a flow or task run; call it inside a "
            "function decorated with @flow or @task, use get_logger() elsewhere, or call "
            "a task's function directly (`my_task.fn()`) inside `with disable_run_logger():`"
        )
    return _run_logger(run, extra)


@contextlib.contextmanager
def disable_run_logger() -> Iterator[None]:
    """Inside ``with disable_run_logger():``, run loggers do nothing.

    :func:`get_run_logger` returns a logger that drops every record, even outside a run (to
    test ``my_task.fn()`` directly), and the records of ``dockyard.flow_runs`` and
    ``dockyard.task_runs`` themselves are dropped. Prints are still printed.
    """
    token = _silenced.set(True)
    try:
        yield
    finally:
        _silenced.reset(token)


class RunLogger(logging.LoggerAdapter[logging.Logger]):
    """A run logger bound to one run (what :func:`get_run_logger` returns).

    Fields given to one call (``extra=``) are added to the run's, not put in their place.
    """

    def __init__(self, logger: logging.Logger, run: Run, extra: dict[str, Any]) -> None:
        super().__init__(logger, extra)
        self.run = run

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        own = kwargs.get("extra")
        kwargs["extra"] = {**(self.extra or {}), **own} if own else self.extra
        return msg, kwargs

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        # the frame of this method is not the caller's
        kwargs["stacklevel"] = kwargs.get("stacklevel", 1) + 1
        token = _emitting.set(self.run)
        try:
            super().log(level, msg, *args, **kwargs)
        finally:
            _emitting.reset(token)


class _Silent(logging.LoggerAdapter[logging.Logger]):
    """A logger that drops everything (see :func:`disable_run_logger`)."""

    def isEnabledFor(self, level: int) -> bool:
        return False

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        return None


def _run_logger(run: Run, extra: dict[str, Any] | None = None) -> RunLogger:
    install()
    if isinstance(run, TaskRunContext):
        flow_run = run.flow_run
        fields: dict[str, Any] = {
            "task_run_id": str(run.task_run_id),
            "task_run_name": run.task_run_name,
            "task_name": run.task.name,
        }
        name = TASK_LOGGER
    else:
        flow_run, fields, name = run, {}, FLOW_LOGGER
    fields["flow_run_id"] = flow_run.handle.id_text if flow_run is not None else None
    fields["flow_run_name"] = flow_run.handle.name if flow_run is not None else None
    fields["flow_name"] = flow_run.flow.name if flow_run is not None else None
    if extra:
        fields.update(extra)
    return RunLogger(logging.getLogger(name), run, fields)


# ---------------------------------------------------------------- shipping


def ship(level: int, name: str, message: str, created: float | None = None) -> None:
    """Send one log line to the current run's logs (nothing outside a run)."""
    task_run = TASK_RUN.get()
    flow_run = task_run.flow_run if task_run is not None else FLOW_RUN.get()
    _ship(flow_run, task_run, level, name, message, created)


def _ship(
    flow_run: FlowRunContext | None,
    task_run: TaskRunContext | None,
    level: int,
    name: str,
    message: str,
    created: float | None,
) -> None:
    if flow_run is None:
        return
    if redaction.LOADED:  # a secret was loaded: hide its value (before a cut could split it)
        message = redaction.redact(message)
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
    """Ships each record to the logs of its run: the run logger's, else the current one."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                message = f"{message}\n{_formatter.formatException(record.exc_info)}"
            run = _emitting.get()
            if run is None:
                ship(record.levelno, record.name, message, record.created)
            elif isinstance(run, TaskRunContext):
                _ship(run.flow_run, run, record.levelno, record.name, message, record.created)
            else:
                _ship(run, None, record.levelno, record.name, message, record.created)
        except Exception:
            self.handleError(record)


# ---------------------------------------------------------------- the console


class ConsoleFormatter(logging.Formatter):
    """``12:00:01.123 | INFO    | Flow run 'crimson-otter' - message``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03d | %(levelname)-7s | %(message)s", "%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        label = _run_label(record)
        if label:
            head, sep, rest = text.partition(" | ")
            level, sep2, message = rest.partition(" | ")
            text = f"{head}{sep}{level}{sep2}{label} - {message}"
        return text


class ConsoleHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Prints run logs on the process's real standard error (never a captured stream),
    unless a handler up the tree prints them on the console already."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)
        self.setFormatter(ConsoleFormatter())

    def emit(self, record: logging.LogRecord) -> None:
        if getattr(record, PRINT_MARK, False):
            return
        if printed_upstream(logging.getLogger(record.name), record.levelno):
            return
        self.stream = _real_stream(sys.stderr)
        super().emit(record)


def printed_upstream(logger: logging.Logger, level: int) -> bool:
    """Whether a record of ``level`` from ``logger`` reaches a handler, other than the SDK's,
    that prints on standard output or error (the one ``logging.basicConfig()`` adds)."""
    consoles = {
        id(stream)
        for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
        if stream is not None
    } | {id(_real_stream(sys.stdout)), id(_real_stream(sys.stderr))}
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if (
                isinstance(handler, logging.StreamHandler)
                and not isinstance(handler, ConsoleHandler | logging.FileHandler)
                and level >= handler.level
                and id(_real_stream(handler.stream)) in consoles
            ):
                return True
        current = current.parent if current.propagate else None
    return False


def _run_label(record: logging.LogRecord) -> str:
    name = getattr(record, "task_run_name", None)
    if name is not None:
        return f"Task run {name!r}"
    name = getattr(record, "flow_run_name", None)
    if name is not None:
        return f"Flow run {name!r}"
    task_run = TASK_RUN.get()
    if task_run is not None:
        return f"Task run {task_run.task_run_name!r}"
    flow_run = FLOW_RUN.get()
    return f"Flow run {flow_run.handle.name!r}" if flow_run is not None else ""


_formatter = logging.Formatter()


class _SilenceFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _silenced.get()


def install() -> None:
    """Set up the run loggers once per process: ship to the run, print on the console."""
    global _installed
    if _installed:
        return
    with _install_lock:
        if _installed:
            return
        shipper, console, silence = RunLogHandler(), ConsoleHandler(), _SilenceFilter()
        for name in (FLOW_LOGGER, TASK_LOGGER):
            logger = logging.getLogger(name)
            if logger.level == logging.NOTSET:
                logger.setLevel(logging.INFO)
            logger.addHandler(shipper)
            logger.addHandler(console)
            logger.addFilter(silence)
        _installed = True


# ---------------------------------------------------------------- print capture


def capture_prints() -> None:
    """Make ``print`` also log its line in runs with ``log_prints`` (installed once)."""
    if builtins.print is not _captured_print:
        builtins.print = _captured_print


def _captured_print(
    *values: object,
    sep: str | None = " ",
    end: str | None = "\n",
    file: Any = None,
    flush: bool = False,
) -> None:
    if file is None or file is sys.stdout:
        run = TASK_RUN.get() or FLOW_RUN.get()
        if run is not None and run.log_prints and not _silenced.get():
            _print_to_log(run, values, sep, end, flush)
            return
    _original_print(*values, sep=sep, end=end, file=file, flush=flush)


def _print_to_log(
    run: Run, values: tuple[object, ...], sep: str | None, end: str | None, flush: bool
) -> None:
    """Print the line (unless a handler up the tree prints its record) and log it at INFO.

    The line goes to the real standard output: the record, not the engine's capture, ships
    it, with the task run's id.
    """
    logger = _run_logger(run)
    if not (logger.isEnabledFor(logging.INFO) and printed_upstream(logger.logger, logging.INFO)):
        _original_print(*values, sep=sep, end=end, file=_real_stream(sys.stdout), flush=flush)
    text = (" " if sep is None else sep).join(map(str, values))
    # stacklevel: the record's caller is the code that printed, not this module
    logger.log(logging.INFO, text, extra={PRINT_MARK: True}, stacklevel=3)


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
        if _emitting.get() is not None:
            return written  # a handler printing a run logger's record: shipped as such
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
        self._out = _Capture(sys.stdout, logging.INFO, "stdout")
        self._err = _Capture(sys.stderr, logging.WARNING, "stderr")
        sys.stdout, sys.stderr = self._out, self._err

    def __exit__(self, *exc: object) -> None:
        self._out.finish()
        self._err.finish()
        sys.stdout, sys.stderr = self._out.dockyard_original, self._err.dockyard_original
