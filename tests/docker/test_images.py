"""Building images: the generated Dockerfile, a custom one, failures, and Dockyard's wheel."""

from __future__ import annotations

import io
import os
import re
from pathlib import Path
from typing import Any

import pytest
from docker_support import FLOWS_REPOSITORY
from rich.console import Console

from dockyard.sdk.deploy.images import (
    IMAGE_WORKDIR,
    DeploymentImage,
    DockerUnavailable,
    ImageBuildError,
    build_image,
)
from dockyard.settings import Settings

CUSTOM_DOCKERFILE = """\
FROM {base}
ARG DOCKYARD_WHEEL
COPY ${{DOCKYARD_WHEEL}} /tmp/dockyard/
RUN python -m pip install --no-cache-dir /tmp/dockyard/*.whl && rm -rf /tmp/dockyard
ENV MADE_BY=custom-dockerfile
WORKDIR /srv/project
COPY . /srv/project/
"""


def run_in(docker_client: Any, image: str, code: str) -> str:
    """Run ``python -c code`` in ``image``; answer its output."""
    output: bytes = docker_client.containers.run(
        image, ["python", "-c", code], remove=True, network_mode="none"
    )
    return output.decode()


def snapshot(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


def quiet() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=200, force_terminal=False), out


def test_the_session_image_is_tagged_with_its_id(flow_image: str, docker_client: Any) -> None:
    name, tag = flow_image.rsplit(":", 1)
    assert name == FLOWS_REPOSITORY
    assert docker_client.images.get(flow_image).id.removeprefix("sha256:")[:12] == tag


def test_generated_dockerfile_installs_dockyard_and_requirements(
    tmp_path: Path, build_settings: Settings, docker_client: Any
) -> None:
    project = tmp_path / "project"
    (project / "pkg").mkdir(parents=True)
    (project / "flows.py").write_text("from dockyard import flow\n")
    (project / "pkg" / "helper.py").write_text("VALUE = 42\n")
    (project / "requirements.txt").write_text("six\n")
    (project / "secret.txt").write_text("not for the image\n")
    (project / ".dockerignore").write_text("secret.txt\n")
    before = snapshot(project)
    console, shown = quiet()
    reference = build_image(
        DeploymentImage("dockyard-test/generated", tag="t1"),
        project,
        entrypoint_file=project / "flows.py",
        settings=build_settings,
        console=console,
    )
    assert reference == "dockyard-test/generated:t1"
    assert snapshot(project) == before  # nothing added to, or left in, the project
    code = (
        "import os, six, dockyard, pkg.helper; "
        "print(os.getcwd(), sorted(os.listdir('.')), dockyard.__version__, pkg.helper.VALUE)"
    )
    cwd, *rest = run_in(docker_client, reference, code).split(" ", 1)
    assert cwd == IMAGE_WORKDIR
    assert rest[0].strip().endswith("42")
    listed = rest[0]
    assert "flows.py" in listed and "requirements.txt" in listed
    assert "secret.txt" not in listed and ".dockyard-build" not in listed
    assert "Step 1/" in shown.getvalue() and "Built image dockyard-test/generated:t1" in (
        shown.getvalue()
    )
    docker_client.images.remove(reference)


def test_custom_dockerfile_gets_the_wheel(
    tmp_path: Path, build_settings: Settings, docker_client: Any
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    dockerfile = CUSTOM_DOCKERFILE.format(base=build_settings.base_image)
    (project / "Dockerfile").write_text(dockerfile)
    (project / "flows.py").write_text("from dockyard import flow\n")
    console, _ = quiet()
    reference = build_image(
        DeploymentImage("dockyard-test/custom:t1", dockerfile="Dockerfile"),
        project,
        settings=build_settings,
        console=console,
    )
    assert (project / "Dockerfile").read_text() == dockerfile  # never overwritten
    code = "import os, dockyard; print(os.environ['MADE_BY'], os.getcwd(), dockyard.__version__)"
    import dockyard

    assert run_in(docker_client, reference, code).split() == [
        "custom-dockerfile",
        "/srv/project",
        dockyard.__version__,
    ]
    docker_client.images.remove(reference)


def test_a_failed_step_is_shown_with_its_output(
    tmp_path: Path, build_settings: Settings, base_image: str
) -> None:
    (tmp_path / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN echo preparing\nRUN echo broken-step-output && exit 7\n"
    )
    console, shown = quiet()
    with pytest.raises(ImageBuildError) as raised:
        build_image(
            DeploymentImage("dockyard-test/broken:t1", dockerfile="Dockerfile"),
            tmp_path,
            settings=build_settings,
            console=console,
        )
    error = raised.value
    assert error.step == "Step 3/3 : RUN echo broken-step-output && exit 7"
    assert error.output == ["broken-step-output"]
    assert str(error).startswith(
        "building image dockyard-test/broken:t1 failed at Step 3/3 : RUN echo broken-step-output"
    )
    assert "returned a non-zero code: 7" in str(error)
    text = shown.getvalue()
    assert "Building image failed at Step 3/3" in text and "| broken-step-output" in text


def test_missing_dockerfile_is_named(tmp_path: Path, build_settings: Settings) -> None:
    with pytest.raises(
        ImageBuildError, match=re.escape("Dockerfile 'Dockerfile.missing' not found")
    ):
        build_image(
            DeploymentImage("x:y", dockerfile="Dockerfile.missing"),
            tmp_path,
            settings=build_settings,
        )


def test_entrypoint_outside_the_context_is_refused(tmp_path: Path) -> None:
    (tmp_path / "project").mkdir()
    (tmp_path / "flows.py").write_text("")
    with pytest.raises(ImageBuildError, match="is not inside the build context"):
        build_image("x:y", tmp_path / "project", entrypoint_file=tmp_path / "flows.py")


def test_docker_not_running_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(DockerUnavailable) as raised:
        build_image("x:y", tmp_path)
    assert str(raised.value) == (
        f"Docker is not running (cannot connect to {tmp_path}/docker.sock); start Docker "
        "Desktop or `dockerd`, or deploy to a process pool without `image=`"
    )


def test_no_file_is_left_in_the_context_on_failure(
    tmp_path: Path, build_settings: Settings, base_image: str
) -> None:
    (tmp_path / "Dockerfile").write_text(f"FROM {base_image}\nRUN exit 1\n")
    with pytest.raises(ImageBuildError):
        build_image(
            DeploymentImage("dockyard-test/broken:t2", dockerfile="Dockerfile"),
            tmp_path,
            settings=build_settings,
            console=quiet()[0],
        )
    assert sorted(os.listdir(tmp_path)) == ["Dockerfile"]
