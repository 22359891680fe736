"""Building and pushing the Docker image a deployment's runs start from.

::

    from pathlib import Path
    from dockyard.sdk.deploy.images import DeploymentImage, build_image, push_image

    reference = build_image(DeploymentImage("my-image", "v1"), Path.cwd(),
                            entrypoint_file=Path("repo_info.py"))
    push_image(reference)

The directory given is the build context (its ``.dockerignore`` applies). Dockyard adds its
own files to the archive sent to Docker, never to the directory: a wheel of the running
Dockyard version at ``.dockyard-build/<wheel file>`` (the build argument ``DOCKYARD_WHEEL``
holds that path), and, with ``dockerfile="auto"``, the Dockerfile it generates (see
:func:`generate_dockerfile`). A custom Dockerfile installs Dockyard as the generated one does::

    ARG DOCKYARD_WHEEL
    COPY ${DOCKYARD_WHEEL} /tmp/dockyard/
    RUN python -m pip install --no-cache-dir /tmp/dockyard/*.whl && rm -rf /tmp/dockyard

(with an extra, such as the Dask task runner's: ``"$(echo /tmp/dockyard/*.whl)[dask]"``).

The Docker SDK and rich are imported only when an image is built or pushed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dockyard import settings as settings_module
from dockyard._docker import (
    DockerUnavailable,
    ImageBuildError,
    ImagePushError,
    connect,
    registry_of,
    split_reference,
)
from dockyard.sdk.deploy._dockerfile import (
    BUILD_DIR,
    CONTEXT_DIR,
    IMAGE_WORKDIR,
    WHEEL_BUILD_ARG,
    default_base_image,
    generate_dockerfile,
)

if TYPE_CHECKING:
    from rich.console import Console

    from dockyard.settings import Settings

__all__ = [
    "BUILD_DIR",
    "CONTEXT_DIR",
    "IMAGE_WORKDIR",
    "WHEEL_BUILD_ARG",
    "DeploymentImage",
    "DockerUnavailable",
    "ImageBuildError",
    "ImagePushError",
    "build_image",
    "default_base_image",
    "entrypoint_in_image",
    "generate_dockerfile",
    "push_image",
]

FIX = "start Docker Desktop or `dockerd`, or deploy to a process pool without `image=`"
EXTRA_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True, init=False)
class DeploymentImage:
    """The image to build for a deployment.

    Args:
        name: the image's name, with its registry to push to (``registry.example.com/x``);
            ``name:tag`` is accepted when ``tag`` is not given.
        tag: the tag. Default: the first 12 hex digits of the built image's id, so a build
            that changes nothing keeps its tag and one that changes something gets a new one.
        dockerfile: ``"auto"`` to generate one, or the path of the project's Dockerfile
            (relative to the build context).
        extras: extras of the ``dockyard`` distribution the generated Dockerfile installs
            (``("dask",)``). A deployment adds those of its flow's task runner.
        build_kwargs: passed on to the Docker API's build (``network_mode="host"``,
            ``buildargs={...}``, ``nocache=True``, ``platform=...``).
    """

    name: str
    tag: str | None
    dockerfile: str
    extras: tuple[str, ...]
    build_kwargs: dict[str, Any] = field(hash=False)

    def __init__(
        self,
        name: str,
        tag: str | None = None,
        dockerfile: str = "auto",
        *,
        extras: tuple[str, ...] | list[str] = (),
        **build_kwargs: Any,
    ) -> None:
        repository, given_tag, digest = split_reference(name.strip())
        if digest:
            raise ValueError(f"image name {name!r} has a digest; give a name and a tag")
        if tag and given_tag and tag != given_tag:
            raise ValueError(f"image name {name!r} has a tag already; leave out tag={tag!r}")
        if not repository:
            raise ValueError("an image needs a name")
        object.__setattr__(self, "name", repository)
        object.__setattr__(self, "tag", tag or given_tag)
        object.__setattr__(self, "dockerfile", str(dockerfile))
        object.__setattr__(self, "extras", _extras(extras))
        object.__setattr__(self, "build_kwargs", dict(build_kwargs))

    def with_extras(self, *extras: str) -> DeploymentImage:
        """A copy of this image that installs ``extras`` too."""
        return DeploymentImage(
            self.name,
            self.tag,
            self.dockerfile,
            extras=(*self.extras, *extras),
            **self.build_kwargs,
        )

    @property
    def reference(self) -> str | None:
        """``name:tag``, or None until a build gives an untagged image its tag."""
        return f"{self.name}:{self.tag}" if self.tag else None


def _extras(given: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The extras' names, checked (they are written into a Dockerfile), once each, sorted.

    Raises:
        ValueError: a name is not one an extra can have.
    """
    if isinstance(given, str):
        given = (given,)
    for extra in given:
        if not isinstance(extra, str) or not EXTRA_NAME.fullmatch(extra):
            raise ValueError(f"{extra!r} is not the name of an extra, such as 'dask' or 'ray'")
    return tuple(sorted(set(given)))


def entrypoint_in_image(entrypoint_file: Path, context: Path) -> str:
    """The path of ``entrypoint_file`` relative to ``context``, as the image holds it.

    Raises:
        ImageBuildError: the file is not inside the build context.
    """
    file, root = Path(entrypoint_file).resolve(), Path(context).resolve()
    if not file.is_relative_to(root):
        raise ImageBuildError(
            f"the flow's file {file} is not inside the build context {root}, so the image "
            "would not hold it; run the deploy script from your project's root directory"
        )
    return file.relative_to(root).as_posix()


def build_image(
    image: DeploymentImage | str,
    context: Path,
    *,
    entrypoint_file: Path | None = None,
    settings: Settings | None = None,
    console: Console | None = None,
) -> str:
    """Build ``image`` from the directory ``context`` and return its ``name:tag``.

    Args:
        image: what to build (a string is ``DeploymentImage(image)``).
        context: the build context: the project's directory.
        entrypoint_file: the flow's file; it must be inside ``context``.
        settings: ``base_image`` (the generated Dockerfile's ``FROM``) and ``home`` (where
            Dockyard's wheel is cached). Default: :func:`dockyard.settings.load`.
        console: where progress goes (default: standard error).

    Raises:
        DockerUnavailable: Docker is not running.
        ImageBuildError: the Dockerfile is missing, a step failed, or the file is outside.
    """
    from dockyard.sdk.deploy._image_build import run_build

    image = image if isinstance(image, DeploymentImage) else DeploymentImage(image)
    settings = settings or settings_module.load()
    root = Path(context).resolve()
    if not root.is_dir():
        raise ImageBuildError(f"the build context {root} is not a directory")
    if entrypoint_file is not None:
        entrypoint_in_image(entrypoint_file, root)
    client = connect(FIX)
    return run_build(client, image, root, settings, console)


def push_image(reference: str, *, console: Console | None = None) -> None:
    """Push ``reference`` to its registry, with the Docker login of this machine.

    Raises:
        DockerUnavailable: Docker is not running.
        ImagePushError: the registry refused it or cannot be reached (the reason, and a hint).
    """
    import docker
    from dockyard.sdk.deploy._image_progress import PushProgress

    client = connect(FIX)
    repository, tag, _ = split_reference(reference)
    progress = PushProgress(reference, console)
    with progress:
        try:
            for message in client.api.push(repository, tag=tag, stream=True, decode=True):
                progress.feed(message)
        except docker.errors.APIError as exc:
            progress.error = str(exc.explanation or exc)
    if progress.error:
        hint = _hint(reference, progress.error)
        raise ImagePushError(f"pushing image {reference} failed: {progress.error}{hint}")
    progress.say(f"Pushed image {reference}")


def _hint(reference: str, error: str) -> str:
    registry = registry_of(reference)
    lowered = error.lower()
    if any(word in lowered for word in ("unauthorized", "denied", "authentication required")):
        return f"; log in with `docker login{' ' + registry if registry else ''}`"
    if registry is None:
        return (
            "; name the image with the registry to push to "
            "(registry.example.com/my-image), or deploy with push=False"
        )
    return f"; is the registry {registry} running and reachable from this machine?"
