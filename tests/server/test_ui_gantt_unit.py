"""The task timeline's layout (``ui.gantt``): rows shared by bars that do not overlap, the
duration order, a retried run's attempts as segments, the cap, labels and ticks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from dockyard.server.ui import gantt
from dockyard.server.ui.gantt import Span

T0 = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(seconds=60)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _span(name: str, start: float, end: float | None, **fields: object) -> Span:
    ended = _at(end) if end is not None else None
    fields.setdefault("state", "COMPLETED" if ended else "RUNNING")
    return Span(id=uuid.uuid4(), name=name, start=_at(start), end=ended, **fields)  # type: ignore[arg-type]


def _lanes(chart: gantt.Chart) -> dict[str, int]:
    return {bar.span.name: bar.lane for bar in chart.bars}


def test_overlapping_runs_get_separate_rows_and_rows_are_reused_once_free() -> None:
    spans = [
        _span("a", 0, 3),
        _span("b", 0.5, 3),
        _span("c", 1, 3),  # all three at once: three rows
        _span("d", 3.5, 4),  # after all of them: the first row again
        _span("e", 3.6, 5),  # overlaps d only: the second row
        _span("f", 2, 10),  # starts while a, b, c run: a fourth row
    ]
    chart = gantt.layout(spans, now=NOW)
    assert _lanes(chart) == {"a": 0, "b": 1, "c": 2, "f": 3, "d": 0, "e": 1}
    assert chart.lanes == 4
    ys = {bar.span.name: bar.y for bar in chart.bars}
    assert len({ys["a"], ys["b"], ys["c"], ys["f"]}) == 4
    assert ys["d"] == ys["a"] and ys["e"] == ys["b"]
    # bars are placed by their start on one axis, in the order they started
    xs = [bar.x for bar in chart.bars]
    assert xs == sorted(xs)
    assert [b.span.name for b in chart.bars] == ["a", "b", "c", "f", "d", "e"]


def test_a_row_is_reused_only_by_a_bar_that_starts_after_its_last_bar_ended() -> None:
    touching = gantt.assign_lanes([_span("a", 0, 1), _span("b", 1, 2)], NOW)
    after = gantt.assign_lanes([_span("a", 0, 1), _span("b", 1.001, 2)], NOW)
    assert touching == [0, 1]
    assert after == [0, 0]


def test_a_run_still_running_lasts_until_now_and_keeps_its_row() -> None:
    spans = [_span("sub", 0, None, kind="subflow"), _span("later", 30, 31)]
    chart = gantt.layout(spans, now=NOW, live=True)
    sub = chart.bars[0]
    assert sub.running and sub.end == NOW and sub.span.href == f"/runs/{sub.span.id}"
    assert _lanes(chart) == {"sub": 0, "later": 1}
    assert sub.x + sub.width == pytest.approx(gantt.WIDTH - gantt.PAD)
    assert chart.now_x == pytest.approx(gantt.WIDTH - gantt.PAD)
    assert "still running" in sub.title and "so far" in sub.title
    assert chart.bars[1].span.href == f"/task-runs/{chart.bars[1].span.id}"


def test_duration_order_puts_the_longest_first_each_on_its_own_row() -> None:
    spans = [
        _span("short", 0, 0.1),
        _span("long", 0.2, 5),
        _span("middle", 6, 8),
        _span("running", 9, None),  # 51 s by now
        _span("tie", 1, 3),  # as long as middle, started earlier
    ]
    chart = gantt.layout(spans, now=NOW, order="duration")
    assert [b.span.name for b in chart.bars] == ["running", "long", "tie", "middle", "short"]
    assert [b.lane for b in chart.bars] == [0, 1, 2, 3, 4]
    assert [b.y for b in chart.bars] == sorted(b.y for b in chart.bars)
    seconds = [b.seconds for b in chart.bars]
    assert seconds == sorted(seconds, reverse=True)


def test_an_unknown_order_is_start() -> None:
    assert gantt.order_of("duration") == "duration"
    assert gantt.order_of("start") == "start"
    assert gantt.order_of("DROP TABLE") == "start"
    assert gantt.order_of(None) == "start"


def test_a_retried_task_shows_each_attempt_and_the_wait_between_them() -> None:
    lines = [
        (_at(1.0), "attempt 1 of 3 failed with ValueError: boom; retrying in 0.5 s"),
        (_at(2.5), "attempt 2 of 3 failed with KeyError: 'x; retrying in 9 s'; retrying in 0 s"),
        (_at(2.0), "something else entirely"),
    ]
    history = gantt.retry_history(_at(0), _at(4), "COMPLETED", lines)
    chart = gantt.layout([_span("flaky", 0, 4, attempts=3, history=history)], now=NOW)
    (bar,) = chart.bars
    pieces = [(s.state, s.attempt, s.start, s.end) for s in bar.segments]
    assert pieces == [
        ("FAILED", 1, _at(0), _at(1)),
        ("AWAITING_RETRY", 0, _at(1), _at(1.5)),
        ("FAILED", 2, _at(1.5), _at(2.5)),  # a retry with no delay: no wait drawn
        ("COMPLETED", 3, _at(2.5), _at(4)),
    ]
    assert bar.attempts == 3
    assert bar.splits == (bar.segments[2].x, bar.segments[3].x)
    assert bar.segments[0].x == bar.x
    assert bar.segments[-1].x + bar.segments[-1].width == pytest.approx(bar.x + bar.width)
    assert "Attempts: 3" in bar.title
    assert "attempt 1: Failed, 2026-05-01T12:00:00.000Z to 2026-05-01T12:00:01.000Z" in bar.title
    assert "waiting to retry: Awaiting retry" in bar.title
    assert "(3 attempts)" in bar.label
    assert chart.retried and [s for s, *_ in chart.legend] == [
        "COMPLETED",
        "FAILED",
        "AWAITING_RETRY",
    ]


def test_a_subflow_retried_shows_its_attempts_from_its_states() -> None:
    states = (
        ("PENDING", _at(-1)),
        ("RUNNING", _at(0)),
        ("AWAITING_RETRY", _at(2)),
        ("RUNNING", _at(3)),
        ("PAUSED", _at(4)),
        ("RUNNING", _at(5)),
        ("FAILED", _at(6)),
    )
    span = _span("child", 0, 6, kind="subflow", state="FAILED", history=states)
    (bar,) = gantt.layout([span], now=NOW).bars
    assert [(s.state, s.attempt) for s in bar.segments] == [
        ("FAILED", 1),
        ("AWAITING_RETRY", 0),
        ("RUNNING", 2),
        ("PAUSED", 0),
        ("FAILED", 2),  # a pause does not start another attempt
    ]
    assert len(bar.splits) == 1


def test_a_retry_line_dated_inside_the_wait_before_it_is_skipped() -> None:
    lines = [
        (_at(1), "attempt 1 of 3 failed with E: x; retrying in 2 s"),
        (_at(2), "attempt 2 of 3 failed with E: x; retrying in 0 s"),
    ]
    assert gantt.retry_history(_at(0), _at(5), "COMPLETED", lines) == (
        ("RUNNING", _at(0)),
        ("AWAITING_RETRY", _at(1)),
        ("RUNNING", _at(3)),
        ("COMPLETED", _at(5)),
    )


def test_a_retried_task_whose_lines_are_gone_is_one_piece_saying_so() -> None:
    history = gantt.retry_history(_at(0), _at(2), "COMPLETED", [])
    (bar,) = gantt.layout([_span("old", 0, 2, attempts=2, history=history)], now=NOW).bars
    assert [(s.state, s.attempt) for s in bar.segments] == [("COMPLETED", 1)]
    assert bar.attempts == 2 and not bar.splits
    assert "Attempts: 2 (the times of each are not recorded)" in bar.title


def test_retry_lines_that_cannot_be_this_runs_attempts_are_skipped() -> None:
    lines = [
        (_at(1), "attempt 1 of 2 failed with E: x; retrying in 1e999 s"),
        (_at(1), "attempt 1 of 2 failed with E: x; retrying in -1 s"),
        (_at(1), "attempt 1 of 2 failed with E: x; retrying in 1-2 s"),
        (_at(-1), "attempt 1 of 2 failed with E: x; retrying in 0 s"),  # before its start
        (_at(2), "attempt 1 of 2 failed with E: x; retrying in 0 s"),  # at its end
    ]
    assert gantt.retry_history(_at(0), _at(2), "FAILED", lines) == (
        ("RUNNING", _at(0)),
        ("FAILED", _at(2)),
    )


def test_the_cap_keeps_the_first_bars_and_says_how_many_there_are() -> None:
    spans = [_span(f"t{i}", i * 0.01, i * 0.01 + 0.005) for i in range(gantt.MAX_BARS + 100)]
    chart = gantt.layout(reversed(spans), now=NOW)
    assert len(chart.bars) == gantt.MAX_BARS
    assert chart.total == gantt.MAX_BARS + 100 and chart.capped
    assert chart.bars[0].span.name == "t0" and chart.bars[-1].span.name == f"t{gantt.MAX_BARS - 1}"
    # in duration order the cap keeps the longest
    longest = _span("longest", 1, 9)
    by_duration = gantt.layout([*spans, longest], now=NOW, order="duration", limit=10)
    assert by_duration.bars[0].span.name == "longest" and len(by_duration.bars) == 10
    # the query already cut them: it says how many there were
    told = gantt.layout(spans[:10], now=NOW, total=12_345, limit=10)
    assert told.capped and told.total_text == "12,345"
    assert gantt.layout(spans[:10], now=NOW, total=gantt.COUNT_AT_MOST).total_text == "100,000+"
    assert not gantt.layout(spans[:10], now=NOW).capped


def test_no_spans_is_an_empty_chart() -> None:
    chart = gantt.layout([], now=NOW)
    assert chart.bars == () and chart.total == 0 and not chart.capped


def test_the_title_gives_times_to_the_millisecond_in_utc() -> None:
    span = Span(
        id=uuid.uuid4(),
        name="load",
        state="COMPLETED",
        start=datetime(2026, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        end=datetime(2026, 5, 1, 12, 1, 5, 400000, tzinfo=UTC),
        cached=True,
    )
    (bar,) = gantt.layout([span], now=NOW).bars
    assert bar.title.splitlines() == [
        "load (task run)",
        "State: Completed",
        "Start: 2026-05-01T12:00:00.123Z",
        "End: 2026-05-01T12:01:05.400Z",
        "Duration: 1 min 05.277 s",
        "Its result came from the cache.",
    ]
    assert gantt.seconds_text(0.3121) == "0.312 s"
    assert gantt.seconds_text(3723.5) == "1 h 02 min 03.500 s"


def test_labels_go_inside_after_or_before_a_bar_and_never_overlap() -> None:
    spans = [
        _span("a-long-task-name", 0, 50),  # wide: inside
        _span("x", 50.5, 50.6),  # narrow with room after it
        _span("y", 59.5, 59.9),  # narrow at the right edge: before it
    ]
    chart = gantt.layout(spans, now=NOW, until=_at(60))
    a, x, y = chart.bars
    assert {a.lane, x.lane, y.lane} == {0}
    assert a.label == "✓ a-long-task-name" and a.label_x > a.x and a.label_anchor == "start"
    assert x.label == "✓ x" and x.label_x > x.x + x.width
    assert y.label == "✓ y" and y.label_anchor == "end" and y.label_x < y.x
    assert x.label_x + len(x.label) * gantt.CHAR < y.label_x - len(y.label) * gantt.CHAR
    # no room for the whole name: as much of it as fits, or nothing
    cut, squeezed, rest = gantt.layout(
        [_span("n" * 40, 0, 0.2), _span("m", 0.201, 0.202), _span("r", 0.203, 2)], now=_at(2)
    ).bars
    assert cut.label.startswith("✓ nnn") and cut.label.endswith("…")
    assert len(cut.label) * gantt.CHAR <= cut.width
    assert squeezed.label == "" and rest.label == "✓ r"


def test_ticks_fall_on_round_steps_from_zero() -> None:
    chart = gantt.layout([_span("a", 0, 1.3)], now=NOW)
    assert [t.label for t in chart.ticks] == [
        "0 s",
        "0.2 s",
        "0.4 s",
        "0.6 s",
        "0.8 s",
        "1 s",
        "1.2 s",
    ]
    minutes = gantt.layout([_span("a", 0, 400)], now=_at(400))
    assert [t.label for t in minutes.ticks] == [
        "0 s",
        "1 min",
        "2 min",
        "3 min",
        "4 min",
        "5 min",
        "6 min",
    ]
    days = gantt.layout([_span("a", 0, 86400 * 400)], now=_at(86400 * 400))
    assert 1 < len(days.ticks) <= gantt.MOST_TICKS + 1
    assert all(gantt.PAD <= t.x <= gantt.WIDTH - gantt.PAD for t in days.ticks)
