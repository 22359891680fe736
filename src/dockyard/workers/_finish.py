"""Reporting how a run ended once its infrastructure exited (or never started).

The engine reports a run's final state itself. When the infrastructure exits and the run has
none, the worker gives it one at once (:func:`finish`):

- the final state the engine **handed over** because it could not reach the server (a line
  in the run's output, :meth:`OutputFile.handed_over`), when the lease token in it is the
  run's: COMPLETED with its result, FAILED or CRASHED with the engine's message;
- otherwise CANCELLED if the run was being cancelled, else CRASHED with the exit code.

A run its flow **suspended** is left as it is: PAUSED without a lease (a suspended run gave
it back), its process exited on purpose, and a resume schedules it again. A PAUSED run that
still has a lease was waiting in its process: that process died, so it is CRASHED.

Every transition is a **compare-and-set**: it carries the state it was decided from
(``expected_state``) and the lease token of the claim. When the run moved on in between
(409), the worker reads it again and decides again, :data:`DECISIONS` times at most; a
handed-over state the rules refuse from the run's state gives way to the worker's own.

**What the engine did not ship.** A run whose engine could not report its end may also have
died before shipping its last log lines (``os._exit``, an OOM kill), or never shipped any
(a server outage). Its output file holds every line it wrote, so the worker adds to its
logs the lines of that file (its last :data:`~._output.SHIP_BYTES`, in batches of
:data:`SHIP_BATCH`) that the run's logs do not hold yet: it reads the logs of this attempt
(those since its last PENDING state, :data:`LOG_PAGES` pages at most) and ships a line of
the file only when no log line of the same text is left to match it (the engine's console
lines match without their ``12:00:01.123 | INFO | Flow run 'x' - `` prefix). A worker that
reports its own ending ships first, so the state shows with its crash trace already there;
one that reports a handed-over state reports it first, while the run's lease still runs.
"""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dockyard._batching import batches, size_bound
from dockyard._values import clean_text, json_problem
from dockyard.client import AsyncClient
from dockyard.exceptions import ApiError, Conflict, DockyardError
from dockyard.schemas import FINAL_STATES, FlowRun, LogCreate, StateTransition
from dockyard.schemas import StateType as S
from dockyard.workers._output import OutputFile
from dockyard.workers._runs import Launched, how_it_exited, label

log = logging.getLogger("dockyard.worker")

LOGGER_NAME = "dockyard.worker"
OUTPUT_LOGGER = "dockyard.worker.output"
ERROR, INFO = 40, 20
DECISIONS = 5
SHIP_BATCH = 500
LOG_PAGES = 100
LOG_PAGE = 1000
HANDED = frozenset({S.COMPLETED, S.FAILED, S.CRASHED, S.CANCELLED})
# What the engine's console handler puts before a run logger's message.
_CONSOLE = re.compile(r"^\d\d:\d\d:\d\d\.\d{3} \| [A-Z]+ *\| (?:(?:Flow|Task) run '.*?' - )?")


@dataclass(frozen=True)
class HandedOver:
    """A final state an engine could not report, as it wrote it in the run's output."""

    state: S
    message: str | None
    result: Any
    lease_token: uuid.UUID


@dataclass(frozen=True)
class _Ending:
    state: S
    message: str | None
    result: Any = None
    handed: bool = False


async def transition(
    client: AsyncClient,
    run: FlowRun,
    token: uuid.UUID | None,
    state: S,
    message: str | None,
    *,
    result: Any = None,
    crash_retry: bool = True,
) -> FlowRun:
    """Move ``run`` from the state it was read in to ``state``, presenting ``token``.

    Raises:
        Conflict: the run is in another state by now, or the rules refuse the move.
        ServerUnreachable, ApiError: the server could not be asked (try again later).
    """
    # A retry of this very transition is answered, not refused; the lease token (new with
    # each claim) keeps a later claim's hand-back from passing for a retry of this one.
    claim = token or f"attempt-{run.attempt}"
    request = StateTransition(
        state=state,
        message=message,
        lease_token=token,
        expected_state=run.state,
        idempotency_key=f"worker:{run.id}:{claim}:{state}",
        crash_retry=crash_retry,
        result=result,
    )
    return await client.set_flow_run_state(run.id, request)


async def set_state(
    client: AsyncClient,
    run: FlowRun,
    token: uuid.UUID | None,
    state: S,
    message: str,
    *,
    crash_retry: bool = True,
) -> FlowRun:
    """Move ``run`` to ``state`` and return it; a refused move returns it as it is now.

    Raises:
        ServerUnreachable, ApiError: the server could not be asked (try again later).
    """
    try:
        return await transition(client, run, token, state, message, crash_retry=crash_retry)
    except Conflict:
        return await client.read_flow_run(run.id)


async def finish(client: AsyncClient, entry: Launched[Any], infrastructure: str) -> str:
    """Give ``entry``'s run a final state if its exited infrastructure left it without one.

    ``infrastructure`` names it in messages: ``its process (pid 42)``. Returns the line
    the worker prints.

    Raises:
        ServerUnreachable, ApiError: the server could not be asked (try again later).
    """
    code = entry.exit_code
    assert code is not None, "finish() is for infrastructure that exited"
    how = f"{infrastructure} {how_it_exited(code)}"
    handed: HandedOver | None = None
    token = entry.lease_token
    read = shipped = False
    refused = "it kept changing state"
    for _ in range(DECISIONS):
        run = await client.read_flow_run(entry.run.id)
        if run.attempt != entry.run.attempt or run.state == S.SCHEDULED:
            return f"{entry.label} moved on to attempt {run.attempt} ({run.state})"
        if run.state in FINAL_STATES:
            return outcome(entry.run, run, code)
        if run.state == S.PAUSED and run.lease_expires is None:
            return f"{entry.label} suspended; it runs again from the top once resumed"
        if not read:  # only a run left without a final state needs its output read
            handed, read = await asyncio.to_thread(handed_over, entry), True
            token = token or (handed.lease_token if handed else None)
        ending = _decide(run, handed, how)
        if not ending.handed and not shipped:
            await ship_output(client, run, entry.output, f"{how} without reporting a final state")
            shipped = True
        try:
            now = await transition(
                client, run, token, ending.state, ending.message, result=ending.result
            )
        except Conflict as exc:
            refused = str(exc).splitlines()[0]
            if ending.handed and exc.current_state == run.state:
                handed = None  # not from this state: the worker's own ending instead
            continue
        except ApiError as exc:
            if not ending.handed or exc.status >= 500:
                raise
            log.warning("%s: the server refused its handed-over state: %s", entry.label, exc)
            handed = None
            continue
        if ending.handed and not shipped:
            await _ship_quietly(client, now, entry.output, f"{how}; its engine could not report")
        if not ending.handed and ending.state in (S.CANCELLED, S.CRASHED):
            entry.ended_unheard = ending.state
        said = outcome(entry.run, now, code)
        return f"{said} (its engine could not report it; the worker did)" if ending.handed else said
    return f"{entry.label} ended; the server refused its final state: {refused}"


def _decide(run: FlowRun, handed: HandedOver | None, how: str) -> _Ending:
    """The final state to give a live run whose infrastructure exited."""
    if run.state == S.CANCELLING:
        if handed is not None and handed.state == S.CANCELLED:
            return _Ending(S.CANCELLED, handed.message, handed=True)
        return _Ending(S.CANCELLED, f"cancelled: {how}")
    if handed is not None and handed.state != S.CANCELLED:
        message = handed.message
        if message is None:
            message = "its engine could not reach the server; reported by its worker"
        result = handed.result if handed.state == S.COMPLETED else None
        return _Ending(handed.state, message, result, handed=True)
    return _Ending(S.CRASHED, f"{how} without reporting a final state")


def handed_over(entry: Launched[Any]) -> HandedOver | None:
    """The final state handed over in ``entry``'s output, if one is there and can be trusted.

    Trusted means: for this run, and with the lease token of the run's claim (when the
    worker knows it; otherwise the server checks the token when it is presented).
    Reads the output file: call it in a thread.
    """
    record = entry.output.handed_over()
    if record is None or record.get("flow_run_id") != str(entry.run.id):
        return None
    try:
        state = S(str(record.get("state")))
        token = uuid.UUID(str(record.get("lease_token")))
    except ValueError:
        state, token = S.SCHEDULED, None
    if state not in HANDED or token is None:
        log.warning("%s: its output hands over a final state that cannot be read", entry.label)
        return None
    if entry.lease_token is not None and token != entry.lease_token:
        log.warning(
            "%s: its output hands over a final state with another lease token; ignored",
            entry.label,
        )
        return None
    message = record.get("message")
    result = record.get("result")
    if json_problem(result) is not None:  # the engine cleans it; a line may hold anything
        result = None
    return HandedOver(
        state, clean_text(message) if isinstance(message, str) else None, result, token
    )


async def crash_unlaunched(
    client: AsyncClient,
    run: FlowRun,
    token: uuid.UUID,
    message: str,
    output: OutputFile,
    *,
    crash_retry: bool = True,
) -> str:
    """Make CRASHED a run whose infrastructure could not start; ``message`` says why.

    ``crash_retry=False``: starting it again would fail the same way; no retry is spent.
    A run cancelled meanwhile becomes CANCELLED instead.
    """
    await ship_output(client, run, output, message)
    now = run
    for _ in range(DECISIONS):
        if now.state == S.CANCELLING:
            state, why = S.CANCELLED, f"cancelled: {message}"
        elif now.state in (S.PENDING, S.RUNNING, S.AWAITING_RETRY):
            state, why = S.CRASHED, message
        else:
            break
        try:
            now = await transition(client, now, token, state, why, crash_retry=crash_retry)
            break
        except Conflict:
            now = await client.read_flow_run(run.id)
    return outcome(run, now, None)


# ---------------------------------------------------------------- output → logs


async def ship_output(client: AsyncClient, run: FlowRun, output: OutputFile, note: str) -> int:
    """Add to the run's logs the lines of its output they do not hold yet; return how many.

    They follow one ERROR record, ``note`` and what follows; see the module's docstring.
    """
    skipped, lines = await asyncio.to_thread(output.last_lines)
    if not lines:
        return 0
    known = await _logged_lines(client, run)
    missing = [line for line in lines if not _take(known, line)]
    if not missing:
        return 0
    header = f"{note}; the lines of its output that its logs did not hold follow"
    if skipped:
        header += f" (its first {skipped} bytes are left out)"
    records = [] if known[header] else [_log(run, ERROR, LOGGER_NAME, header)]
    records += [_log(run, INFO, OUTPUT_LOGGER, line) for line in missing]
    for batch in batches(records, lambda r: size_bound(vars(r)), SHIP_BATCH):
        await client.create_logs(batch)
    return len(missing)


async def _ship_quietly(client: AsyncClient, run: FlowRun, output: OutputFile, note: str) -> None:
    """Ship the output after the final state: a failure costs the lines, never the state."""
    try:
        await ship_output(client, run, output, note)
    except DockyardError as exc:
        log.warning("%s: could not add its output to its logs: %s", label(run), exc)


def _take(known: Counter[str], line: str) -> bool:
    """Whether a log line of this text is left to match ``line`` (it is used up if so)."""
    for text in (line, _CONSOLE.sub("", line, count=1)):
        if known[text] > 0:
            known[text] -= 1
            return True
    return False


async def _logged_lines(client: AsyncClient, run: FlowRun) -> Counter[str]:
    """The lines of the run's logs of this attempt, with how many times each is there."""
    since = await _attempt_start(client, run)
    known: Counter[str] = Counter()
    after: int | None = None
    for _ in range(LOG_PAGES):
        page = await client.read_logs(flow_run_id=run.id, after_id=after, limit=LOG_PAGE)
        for record in page:
            if since is None or _utc(record.timestamp) >= since:
                known.update(record.message.split("\n"))
        if len(page) < LOG_PAGE:
            break
        after = page[-1].id
    return known


async def _attempt_start(client: AsyncClient, run: FlowRun) -> datetime | None:
    """When this attempt was claimed: logs of an earlier attempt are not this one's."""
    states = await client.read_flow_run_states(run.id)
    claimed = [state.timestamp for state in states if state.type == S.PENDING]
    return _utc(claimed[-1]) if claimed else None


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _log(run: FlowRun, level: int, name: str, message: str) -> LogCreate:
    return LogCreate(flow_run_id=run.id, level=level, name=name, message=message)


def outcome(before: FlowRun, now: FlowRun, code: int | None) -> str:
    """``flow run 'x' (id) completed``, ``... crashed (code 3): why``, and so on."""
    exit_code = f" (code {code})" if code is not None else ""
    if now.attempt != before.attempt:
        what = f"crashed{exit_code}; scheduled again as attempt {now.attempt} (crash retries)"
    elif now.state == S.COMPLETED:
        what = "completed"
    elif now.state == S.FAILED:
        what = f"failed{exit_code}"
    elif now.state == S.CANCELLED:
        what = "cancelled"
    elif now.state == S.CRASHED:
        what = f"crashed{exit_code}: {now.state_message}"
    else:
        what = f"ended{exit_code} while {now.state}"
    return f"{label(before)} {what}"
