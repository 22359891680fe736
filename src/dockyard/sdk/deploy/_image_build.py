"""The build itself: the archive sent to Docker, the Dockerfile, the stream of progress.

The archive holds the project's files (as ``.dockerignore`` leaves them) and Dockyard's own
(the wheel, a generated Dockerfile) under ``.dockyard-build/``; nothing is written to the
project's directory. With ``dockerfile="auto"`` the project's files go under ``context/``, so
that copying the project into the image does not copy Dockyard's files too.
"""

from __future__ import annotations

import io
import tarfile
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from dockyard._docker import ImageBuildError
from dockyard.sdk.deploy._dockerfile import (
    BUILD_DIR,
    CONTEXT_DIR,
    WHEEL_BUILD_ARG,
    default_base_image,
    generate_dockerfile,
)

if TYPE_CHECKING:
    from rich.console import Console

    from dockyard.sdk.deploy.images import DeploymentImage
    from dockyard.settings import Settings

__all__ = ["included_files", "run_build", "write_archive"]

GENERATED_DOCKERFILE = f"{BUILD_DIR}/Dockerfile"


def run_build(
    client: Any,
    image: DeploymentImage,
    root: Path,
    settings: Settings,
    console: Console | None,
) -> str:
    """Build ``image`` from ``root`` with ``client``; return the image's ``name:tag``."""
    from dockyard.sdk.deploy._image_wheel import dockyard_wheel

    prefix, dockerfile, files, extras = _layout(image, root, settings)
    wheel = dockyard_wheel(settings.home / "wheels")
    wheel_path = f"{BUILD_DIR}/{wheel.name}"
    extras[wheel_path] = wheel.read_bytes()
    with tempfile.TemporaryFile() as archive:
        write_archive(archive, root, files, prefix, extras)
        archive.seek(0)
        image_id = _build(client, archive, image, dockerfile, wheel_path, console)
    if image.reference:
        return image.reference
    tag = image_id.removeprefix("sha256:")[:12]
    client.api.tag(image_id, image.name, tag=tag)
    return f"{image.name}:{tag}"


def _layout(
    image: DeploymentImage, root: Path, settings: Settings
) -> tuple[str, str, list[str], dict[str, bytes]]:
    """Where the project goes in the archive, the Dockerfile's path there, the project's
    files, and the files Dockyard adds (a generated Dockerfile, or one from outside ``root``).
    """
    if image.dockerfile == "auto":
        files = included_files(root, GENERATED_DOCKERFILE)
        base = settings.base_image or default_base_image()
        text = generate_dockerfile(
            base, requirements="requirements.txt" in files, extras=image.extras
        )
        return f"{CONTEXT_DIR}/", GENERATED_DOCKERFILE, files, {GENERATED_DOCKERFILE: text.encode()}
    dockerfile, content = _custom_dockerfile(root, image.dockerfile)
    extras = {dockerfile: content} if content is not None else {}
    return "", dockerfile, included_files(root, dockerfile), extras


def included_files(root: Path, dockerfile: str) -> list[str]:
    """The paths under ``root`` that ``.dockerignore`` leaves in the context (relative)."""
    from docker.utils.build import exclude_paths

    patterns: list[str] = []
    ignore = root / ".dockerignore"
    if ignore.is_file():
        lines = (line.strip() for line in ignore.read_text(errors="replace").splitlines())
        patterns = [line for line in lines if line and not line.startswith("#")]
    found = exclude_paths(str(root), patterns, dockerfile=dockerfile)
    return sorted(path for path in found if not path.startswith(BUILD_DIR))


def write_archive(
    out: IO[bytes], root: Path, files: list[str], prefix: str, extras: dict[str, bytes]
) -> None:
    """Write the build context to ``out`` as a tar: ``files`` under ``prefix``, then ``extras``."""
    with tarfile.open(fileobj=out, mode="w") as tar:
        for directory in {BUILD_DIR, prefix.rstrip("/")} - {""}:
            info = tarfile.TarInfo(directory)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, int(time.time())
            tar.addfile(info)
        for relative in files:
            path = root / relative
            info = tar.gettarinfo(str(path), arcname=prefix + relative)
            if info is None:
                continue  # a socket: nothing to send
            info.mtime = int(min(max(info.mtime, 0), 8**11 - 1))
            if info.isfile():
                with path.open("rb") as file:
                    tar.addfile(info, file)
            else:
                tar.addfile(info)
        for name, data in extras.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))


def _custom_dockerfile(root: Path, given: str) -> tuple[str, bytes | None]:
    """Its path in the archive, and its content when it must be added (outside ``root``)."""
    path = Path(given).expanduser()
    path = (path if path.is_absolute() else root / path).resolve()
    if not path.is_file():
        raise ImageBuildError(
            f"Dockerfile {given!r} not found (looked for {path}); give its path relative to "
            "the build context, or dockerfile='auto' to have one generated"
        )
    if path.is_relative_to(root):
        return path.relative_to(root).as_posix(), None
    return GENERATED_DOCKERFILE, path.read_bytes()


def _build(
    client: Any,
    archive: IO[bytes],
    image: DeploymentImage,
    dockerfile: str,
    wheel_path: str,
    console: Console | None,
) -> str:
    """Run the build, showing progress; return the image's id."""
    import docker
    from dockyard.sdk.deploy._image_progress import BuildProgress

    options = dict(image.build_kwargs)
    buildargs = {WHEEL_BUILD_ARG: wheel_path, **(options.pop("buildargs", None) or {})}
    shown = image.reference or image.name
    progress = BuildProgress(shown, console)
    with progress:
        try:
            stream = client.api.build(
                fileobj=archive,
                custom_context=True,
                tag=image.reference,
                dockerfile=dockerfile,
                buildargs=buildargs,
                rm=True,
                forcerm=True,
                decode=True,
                **options,
            )
            for message in stream:
                progress.feed(message)
        except docker.errors.APIError as exc:
            progress.error = str(exc.explanation or exc)
    if progress.error or not progress.image_id:
        progress.failed()
        where = f" at {progress.step}" if progress.step else ""
        raise ImageBuildError(
            f"building image {shown} failed{where}: {progress.error or 'no image was made'}",
            step=progress.step,
            output=progress.output,
        )
    progress.say(f"Built image {shown}")
    return progress.image_id
