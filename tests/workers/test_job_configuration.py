"""What the worker does to a claimed job configuration, and how it follows a run's output."""

from __future__ import annotations

import json
from pathlib import Path

from dockyard.job_templates import configuration, render
from dockyard.workers._output import FINAL_STATE_MARKER, MAX_LINE_CHARS, OutputFile


def test_env_placeholders_are_filled_from_the_workers_environment() -> None:
    template = {
        "env": {"TOKEN": "{{ $SECRET }}", "GONE": "{{$UNSET}}", "URL": "http://{{ $HOST }}:1/x"},
        "command": ["run", "{{ $UNSET }}", "--host={{ $HOST }}"],
        "working_dir": "{{ $UNSET }}",
        "stream_output": True,
        "name": "{{ name }}",
    }
    filled = render(template, {"name": "job"}, {"SECRET": "s3", "HOST": "box"})
    assert filled == {
        "env": {"TOKEN": "s3", "URL": "http://box:1/x"},
        "command": ["run", "--host=box"],
        "stream_output": True,
        "name": "job",
    }


def test_only_the_pools_template_names_the_workers_environment() -> None:
    """A deployment's or a run's value is plain text, never a placeholder: anyone who can
    create a run could otherwise read the worker's secrets. The pool's own template (its
    job configuration and its defaults) may name them."""
    template = {
        "job_configuration": {
            "env": "{{ env }}",
            "image": "{{ image }}",
            "tag": "v-{{ tag }}-{{ $HOST }}",
            "credentials": "{{ credentials }}",
        },
        "variables": {
            "type": "object",
            "properties": {
                "env": {"type": "object", "default": {"FROM_POOL": "{{ $SECRET }}"}},
                "image": {"type": "string"},
                "tag": {"type": "string"},
                "credentials": {"type": "object", "default": {"password": "{{ $SECRET }}"}},
            },
        },
    }
    supplied = {
        "env": {"LEAK": "{{ $SECRET }}", "ALSO": "x-{{$SECRET}}"},
        "image": "{{ $SECRET }}",
        "tag": "{{ $SECRET }}",
    }
    environ = {"SECRET": "s3", "HOST": "box"}
    assert configuration(template, supplied, environ) == {
        "env": {"FROM_POOL": "s3", "LEAK": "{{ $SECRET }}", "ALSO": "x-{{$SECRET}}"},
        "image": "{{ $SECRET }}",
        "tag": "v-{{ $SECRET }}-box",
        "credentials": {"password": "s3"},
    }
    # a supplied value replaces a default that names the environment: still plain text
    override = {"credentials": {"password": "{{ $SECRET }}"}}
    assert configuration(template, override, environ)["credentials"] == override["credentials"]
    # the server shows the template's own environment placeholders as they are
    assert configuration(template, {}, None) == {
        "env": {"FROM_POOL": "{{ $SECRET }}"},
        "tag": "v--{{ $HOST }}",
        "credentials": {"password": "{{ $SECRET }}"},
    }


def test_output_file_gives_new_complete_lines_and_its_end(tmp_path: Path) -> None:
    path = tmp_path / "run.out"
    output = OutputFile(path)
    assert output.new_lines() == [] and output.last_lines() == (0, [])
    assert output.handed_over() is None
    with path.open("ab") as file:
        file.write(b"one\ntw")
        file.flush()
        assert output.new_lines() == ["one"]
        file.write(b"o\r\nthree")
        file.flush()
        assert output.new_lines() == ["two"]
    assert output.new_lines(final=True) == ["three"]
    assert output.last_lines() == (0, ["one", "two", "three"])
    # only the end of a big file: from the start of a line, saying how much is left out
    assert output.last_lines(10) == (4, ["two", "three"])
    assert output.last_lines(9) == (9, ["three"])
    output.remove()
    assert not path.exists()


def test_output_file_hides_and_reads_a_handed_over_final_state(tmp_path: Path) -> None:
    path = tmp_path / "run.out"
    output = OutputFile(path)
    record = {"flow_run_id": "r", "state": "COMPLETED", "result": [1], "lease_token": "t"}
    marker = FINAL_STATE_MARKER + json.dumps(record)
    long = "x" * (MAX_LINE_CHARS + 5)
    path.write_text(f"before\npartial\n{marker}\n{long}\nafter\n")
    assert output.new_lines() == ["before", "partial", long, "after"]  # never echoed
    skipped, lines = output.last_lines()
    assert skipped == 0 and lines[:2] == ["before", "partial"] and lines[-1] == "after"
    assert lines[2].startswith("x" * MAX_LINE_CHARS) and lines[2].endswith("(5 characters cut)")
    assert output.handed_over() == record
    # a line cut short by a process that died while writing it hands nothing over
    path.write_text(f"{marker[:-3]}")
    assert output.handed_over() is None


def test_output_lines_hold_only_text_the_server_stores(tmp_path: Path) -> None:
    """A NUL a process writes would get the batch of lines it is in refused."""
    path = tmp_path / "run.out"
    path.write_bytes(b"a\x00b\n\xff\n")
    assert OutputFile(path).new_lines() == ["a\ufffdb", "\ufffd"]
