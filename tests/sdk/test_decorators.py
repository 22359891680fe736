"""``@flow`` and ``@task`` record definitions: names, options, and no work at import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

import dockyard
from dockyard import Flow, Task, flow, task


def test_bare_decorators_name_flows_with_dashes_and_tasks_as_written() -> None:
    @flow
    def get_repo_info() -> None:
        """Read a repository's statistics."""

    @task
    def fetch_page(n: int) -> int:
        return n

    assert isinstance(get_repo_info, Flow) and isinstance(fetch_page, Task)
    assert get_repo_info.name == "get-repo-info"
    assert fetch_page.name == "fetch_page"
    assert get_repo_info.description == "Read a repository's statistics."
    assert get_repo_info.__name__ == "get_repo_info"
    assert fetch_page.task_key.endswith("fetch_page")


def test_keyword_options_are_recorded_and_checked() -> None:
    @flow(
        name="etl",
        description="nightly",
        version="1.2",
        retries=2,
        retry_delay_seconds=[1, 5],
        timeout_seconds=30,
        log_prints=True,
        validate_parameters=False,
        tags=["a", "b"],
    )
    def pipeline() -> None:
        """Not this."""

    assert pipeline.name == "etl"
    assert pipeline.description == "nightly"
    assert pipeline.version == "1.2"
    assert pipeline.retries == 2
    assert pipeline.retry_delay_seconds == (1.0, 5.0)
    assert pipeline.timeout_seconds == 30.0
    assert pipeline.log_prints is True
    assert pipeline.validate_parameters is False
    assert pipeline.tags == ("a", "b")

    @task(cache_key_fn=lambda ctx, params: "k", cache_expiration=timedelta(minutes=1))
    def cached() -> None: ...

    assert cached.cache_expiration == 60.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"name": "a/b"}, "must not contain '/'"),
        ({"name": ""}, "must not be empty"),
        ({"retries": -1}, "retries"),
        ({"retry_delay_seconds": "soon"}, "retry_delay_seconds"),
        ({"retry_delay_seconds": [-1]}, "negative"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"tags": "one"}, "tags"),
    ],
)
def test_bad_options_are_refused_when_decorating(options: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        flow(**options)(lambda: None)  # type: ignore[call-overload]


def test_async_generators_cannot_be_flows() -> None:
    async def stream() -> object:
        yield 1

    with pytest.raises(TypeError, match="async generator"):
        task(stream)


def test_with_options_copies_a_flow() -> None:
    @flow(retries=1)
    def base() -> int:
        return 1

    other = base.with_options(name="other", retries=3)
    assert (other.name, other.retries) == ("other", 3)
    assert (base.name, base.retries) == ("base", 1)
    assert other.fn is base.fn


def test_decorating_does_no_io_and_imports_nothing_heavy(tmp_path: Path) -> None:
    module = tmp_path / "flows.py"
    module.write_text(
        textwrap.dedent(
            """
            from dockyard import flow, task

            @task(retries=2)
            def add(x: int, y: int) -> int:
                return x + y

            @flow(log_prints=True)
            def pipeline(n: int = 1) -> int:
                return add(n, 1)
            """
        )
    )
    check = (
        "import sys, flows; "
        "heavy = [m for m in ('httpx', 'pydantic', 'sqlalchemy', 'logging', 'dockyard.client') "
        "if m in sys.modules]; print(heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", check],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "DOCKYARD_API_URL": "http://127.0.0.1:9/api"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert result.stderr == ""


def test_the_engine_start_path_does_not_import_the_client() -> None:
    check = (
        "import sys; import dockyard.engine, dockyard.sdk.engine, dockyard.sdk.deploy.entrypoints; "
        "print([m for m in ('httpx', 'pydantic', 'sqlalchemy', 'dockyard.client') "
        "if m in sys.modules])"
    )
    result = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_lazy_public_names_resolve() -> None:
    for name in dockyard.__all__:
        assert getattr(dockyard, name) is not None
    with pytest.raises(AttributeError):
        dockyard.not_a_name  # type: ignore[attr-defined]  # noqa: B018
