"""The parts of image builds that need no daemon: names, the Dockerfile, the archive, the
wheel of the running Dockyard, and progress lines.
"""

from __future__ import annotations

import importlib
import io
import subprocess
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.console import Console

import dockyard
from dockyard import flow
from dockyard.sdk.deploy import _image_wheel, images
from dockyard.sdk.deploy._image_build import _layout, included_files, write_archive
from dockyard.sdk.deploy._image_progress import BuildProgress
from dockyard.sdk.deploy.deployments import Deployment, _with_image
from dockyard.sdk.deploy.images import (
    DeploymentImage,
    ImageBuildError,
    default_base_image,
    entrypoint_in_image,
    generate_dockerfile,
)
from dockyard.settings import Settings
from dockyard.task_runners import ThreadPoolTaskRunner
from dockyard_dask import DaskTaskRunner
from dockyard_ray import RayTaskRunner

ROOT = Path(__file__).resolve().parents[2]


def test_deployment_image_names() -> None:
    assert DeploymentImage("my-image", "tutorial").reference == "my-image:tutorial"
    assert DeploymentImage("my-image:tutorial").tag == "tutorial"
    assert DeploymentImage("127.0.0.1:5000/team/img").reference is None
    assert DeploymentImage("127.0.0.1:5000/team/img:2").name == "127.0.0.1:5000/team/img"
    image = DeploymentImage("x", "1", dockerfile="Dockerfile", network_mode="host", nocache=True)
    assert image.build_kwargs == {"network_mode": "host", "nocache": True}
    with pytest.raises(ValueError, match="has a tag already"):
        DeploymentImage("x:1", "2")
    with pytest.raises(ValueError, match="needs a name"):
        DeploymentImage("")


def test_default_base_image_follows_the_interpreter() -> None:
    major, minor = sys.version_info[:2]
    assert default_base_image() == f"python:{major}.{minor}-slim"


def test_generated_dockerfile() -> None:
    text = generate_dockerfile("python:3.11-slim", requirements=True)
    lines = text.splitlines()
    assert lines[1] == "FROM python:3.11-slim"
    assert "ARG DOCKYARD_WHEEL" in lines and "COPY ${DOCKYARD_WHEEL} /tmp/dockyard/" in lines
    assert "COPY context/requirements.txt /tmp/dockyard-requirements.txt" in lines
    assert lines[-2:] == ["WORKDIR /opt/dockyard/flows", "COPY context/ /opt/dockyard/flows/"]
    assert "requirements" not in generate_dockerfile("base", requirements=False)


def test_the_generated_dockerfile_installs_extras() -> None:
    plain = "RUN python -m pip install --no-cache-dir /tmp/dockyard/*.whl && rm -rf /tmp/dockyard"
    assert plain in generate_dockerfile("base", requirements=False).splitlines()
    text = generate_dockerfile("base", requirements=False, extras=("dask", "ray"))
    assert (
        'RUN python -m pip install --no-cache-dir "$(echo /tmp/dockyard/*.whl)[dask,ray]" '
        "&& rm -rf /tmp/dockyard"
    ) in text.splitlines()


def test_deployment_image_extras() -> None:
    image = DeploymentImage("x:1", extras=["ray"], network_mode="host")
    assert image.extras == ("ray",) and image.build_kwargs == {"network_mode": "host"}
    wider = image.with_extras("dask", "ray")
    assert (wider.reference, wider.extras, wider.build_kwargs) == (
        "x:1",
        ("dask", "ray"),
        {"network_mode": "host"},
    )
    assert DeploymentImage("x").extras == ()
    with pytest.raises(ValueError, match="not the name of an extra"):
        DeploymentImage("x", extras=["dask] && curl evil"])


def test_the_generated_dockerfile_follows_the_image_extras(tmp_path: Path) -> None:
    (tmp_path / "flow.py").write_text("")
    _, dockerfile, _, extras = _layout(
        DeploymentImage("x:1", extras=["dask"]), tmp_path, Settings(base_image="base")
    )
    assert '"$(echo /tmp/dockyard/*.whl)[dask]"' in extras[dockerfile].decode()


def noop() -> None:
    pass


@pytest.mark.parametrize(
    ("runner", "wanted"),
    [
        (None, ()),
        (ThreadPoolTaskRunner(), ()),
        (DaskTaskRunner(), ("dask",)),
        (RayTaskRunner(), ("ray",)),
    ],
)
def test_a_deployment_image_installs_its_task_runners_extra(
    runner: object, wanted: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[DeploymentImage] = []

    def build(image: DeploymentImage, context: Path, **kwargs: object) -> str:
        built.append(image)
        return "x:1"

    monkeypatch.setattr(images, "build_image", build)
    monkeypatch.chdir(ROOT)
    pool = SimpleNamespace(
        name="pool", type="docker", base_job_template={"variables": {"properties": {"image": {}}}}
    )
    deployment = Deployment(flow=flow(task_runner=runner)(noop), name="d", work_pool_name="pool")
    done = _with_image(deployment, pool, "x:1", build=True, push=False)  # type: ignore[arg-type]
    assert done.image == "x:1" and built[0].extras == wanted


def test_entrypoint_in_image(tmp_path: Path) -> None:
    (tmp_path / "flows").mkdir()
    assert entrypoint_in_image(tmp_path / "flows" / "a.py", tmp_path) == "flows/a.py"
    with pytest.raises(ImageBuildError, match="run the deploy script from your project's root"):
        entrypoint_in_image(tmp_path / "a.py", tmp_path / "flows")


def test_archive_holds_the_context_and_extras(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.py").write_text("A")
    (tmp_path / "skip.log").write_text("no")
    (tmp_path / ".dockerignore").write_text("# comment\n*.log\n")
    (tmp_path / ".dockyard-build").mkdir()  # a stray one of the project is never sent
    (tmp_path / ".dockyard-build" / "old.whl").write_text("stale")
    files = included_files(tmp_path, ".dockyard-build/Dockerfile")
    assert files == [".dockerignore", "sub", "sub/a.py"]
    out = io.BytesIO()
    write_archive(out, tmp_path, files, "context/", {".dockyard-build/Dockerfile": b"FROM x\n"})
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        names = sorted(tar.getnames())
        dockerfile = tar.extractfile(".dockyard-build/Dockerfile")
        assert dockerfile is not None and dockerfile.read() == b"FROM x\n"
    assert names == [
        ".dockyard-build",
        ".dockyard-build/Dockerfile",
        "context",
        "context/.dockerignore",
        "context/sub",
        "context/sub/a.py",
    ]


def test_progress_names_steps_and_keeps_the_failing_output() -> None:
    out = io.StringIO()
    progress = BuildProgress("img:1", Console(file=out, width=200, force_terminal=False))
    with progress:
        for message in [
            {"stream": "Step 1/2 : FROM base\n"},
            {"stream": " ---> 1234\n"},
            {"stream": "Step 2/2 : RUN make\n"},
            {"stream": "compiling\nfai"},
            {"stream": "led\n"},
            {"error": "The command '/bin/sh -c make' returned a non-zero code: 2"},
        ]:
            progress.feed(message)
    progress.failed()
    assert progress.step == "Step 2/2 : RUN make"
    assert progress.output == ["compiling", "failed"]
    text = out.getvalue()
    assert "Step 1/2 : FROM base" in text and "| failed" in text


def test_the_wheel_comes_from_the_source_tree(tmp_path: Path) -> None:
    assert _image_wheel.source_tree() == ROOT
    wheel = _image_wheel.dockyard_wheel(tmp_path)
    assert wheel.name == f"dockyard-{dockyard.__version__}-py3-none-any.whl"
    assert _image_wheel.dockyard_wheel(tmp_path) == wheel  # cached
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
    assert "dockyard/workers/templates/docker.json" in names
    assert "dockyard/sdk/deploy/images.py" in names
    # the task runners of the extras, so that an image with `dockyard[dask]` has them
    assert "dockyard_dask/task_runners.py" in names and "dockyard_ray/context.py" in names


def test_an_installed_release_is_packed_again(tmp_path: Path) -> None:
    built = _image_wheel.dockyard_wheel(tmp_path / "cache")
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), built],
        check=True,
        capture_output=True,
    )
    info = next(target.glob("dockyard-*.dist-info"))
    repacked = tmp_path / built.name
    _image_wheel._repack(metadata.PathDistribution(info), repacked)
    with zipfile.ZipFile(built) as original, zipfile.ZipFile(repacked) as again:
        assert sorted(again.namelist()) == sorted(original.namelist())
        for name in original.namelist():
            if not name.endswith("RECORD"):
                assert again.read(name) == original.read(name), name
    # pip accepts it: its RECORD is right
    check = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target",
         str(tmp_path / "again"), str(repacked)],
        capture_output=True,
        text=True,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr


def test_importing_images_stays_light() -> None:
    code = (
        "import sys, dockyard.sdk.deploy.images; "
        "print(sorted(m for m in ('docker', 'rich') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize(
    "module_name", ["dockyard.sdk.deploy.images", "dockyard.workers.docker", "dockyard._docker"]
)
def test_all_is_honest(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert [name for name in module.__all__ if not hasattr(module, name)] == []
