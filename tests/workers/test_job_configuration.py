"""What the worker does to a claimed job configuration, and how it follows a run's output."""

from __future__ import annotations

from pathlib import Path

from dockyard.workers._jobs import fill_placeholders
from dockyard.workers._output import OutputFile


def test_env_placeholders_are_filled_from_the_workers_environment() -> None:
    config = {
        "env": {"TOKEN": "{{ $SECRET }}", "GONE": "{{$UNSET}}", "URL": "http://{{ $HOST }}:1/x"},
        "command": ["run", "{{ $UNSET }}", "--host={{ $HOST }}"],
        "working_dir": "{{ $UNSET }}",
        "stream_output": True,
        "name": "{{ not_an_env }}",
    }
    filled = fill_placeholders(config, {"SECRET": "s3", "HOST": "box"})
    assert filled == {
        "env": {"TOKEN": "s3", "URL": "http://box:1/x"},
        "command": ["run", "--host=box"],
        "stream_output": True,
        "name": "{{ not_an_env }}",  # the server renders the others
    }


def test_output_file_gives_new_complete_lines_and_a_tail(tmp_path: Path) -> None:
    path = tmp_path / "run.out"
    output = OutputFile(path)
    assert output.new_lines() == [] and output.tail() == []
    with path.open("ab") as file:
        file.write(b"one\ntw")
        file.flush()
        assert output.new_lines() == ["one"]
        file.write(b"o\r\nthree")
        file.flush()
        assert output.new_lines() == ["two"]
    assert output.new_lines(final=True) == ["three"]
    assert output.tail(2) == ["two", "three"]
    output.remove()
    assert not path.exists()
