"""A wheel of the running Dockyard, to install the same version inside an image.

Two cases, told apart by the installed distribution's metadata:

- an installed release (its files are the code running now): the installed files are packed
  again into a wheel, so no package index is needed;
- a source tree (an editable install, whose ``direct_url.json`` says so, or a checkout on
  ``sys.path``): the wheel is built from it with ``pip wheel --no-deps``.

Either way the wheel is cached under ``$DOCKYARD_HOME/wheels``, keyed by the version (a
release) or by a hash of the source files (a tree), so it is built once per change.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from dockyard._docker import ImageBuildError

__all__ = ["dockyard_wheel", "source_tree"]

DIST = "dockyard"
# the distribution's packages: Dockyard, and the task runners its extras need
PACKAGES = (DIST, "dockyard_dask", "dockyard_ray")
PACKAGE_DIR = Path(__file__).resolve().parent.parent  # .../dockyard
SKIPPED_METADATA = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE")


def dockyard_wheel(cache: Path) -> Path:
    """The path of a wheel of the running Dockyard, built into ``cache`` when not there yet.

    Raises:
        ImageBuildError: the wheel cannot be made (the build's output says why).
    """
    tree = source_tree()
    if tree is not None:
        return _from_source(tree, cache)
    return _from_installed(cache)


def source_tree() -> Path | None:
    """The source tree of the running Dockyard, or None when it runs from an installed release."""
    try:
        dist: metadata.Distribution | None = metadata.distribution(DIST)
    except metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        editable = _editable_location(dist)
        if editable is not None and _is_tree(editable):
            return editable
        installed = Path(str(dist.locate_file(f"{DIST}/__init__.py")))
        if installed.is_file() and installed.resolve() == PACKAGE_DIR / "__init__.py":
            return None
    # not installed, or another copy than the one installed: the checkout around this package
    for root in (PACKAGE_DIR.parent.parent, PACKAGE_DIR.parent):
        if _is_tree(root):
            return root
    if dist is None:
        raise ImageBuildError(
            f"cannot find Dockyard's source around {PACKAGE_DIR} to build a wheel of it; "
            "install Dockyard with pip (then the installed files are used)"
        )
    return None


def _editable_location(dist: metadata.Distribution) -> Path | None:
    text = dist.read_text("direct_url.json")
    if not text:
        return None
    info = json.loads(text)
    if not info.get("dir_info", {}).get("editable"):
        return None
    return Path(unquote(urlsplit(info.get("url", "")).path))


def _is_tree(root: Path) -> bool:
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file() or not (root / "src" / DIST).is_dir():
        return False
    return f'name = "{DIST}"' in pyproject.read_text(errors="replace")


def _from_source(tree: Path, cache: Path) -> Path:
    target = cache / f"source-{_tree_hash(tree)}"
    found = sorted(target.glob("*.whl")) if target.is_dir() else []
    if found:
        return found[0]
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".building-") as tmp:
        command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp, str(tree)]
        done = subprocess.run(command, capture_output=True, text=True, cwd=tmp)
        wheels = sorted(Path(tmp).glob(f"{DIST}-*.whl"))
        if done.returncode != 0 or not wheels:
            raise ImageBuildError(
                f"building a wheel of Dockyard from {tree} failed "
                f"(`{' '.join(command)}`):\n{done.stdout}{done.stderr}".rstrip()
            )
        staged = Path(tmp) / "done"
        staged.mkdir()
        shutil.move(wheels[0], staged / wheels[0].name)
        _publish(staged, target)
    return next(target.glob("*.whl"))


def _tree_hash(tree: Path) -> str:
    digest = hashlib.sha256()
    for path in _tree_files(tree):
        digest.update(path.relative_to(tree).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _tree_files(tree: Path) -> Iterator[Path]:
    for name in SOURCE_FILES:
        if (tree / name).is_file():
            yield tree / name
    for package in PACKAGES:
        for directory, dirs, files in os.walk(tree / "src" / package):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for name in sorted(files):
                if not name.endswith((".pyc", ".pyo")):
                    yield Path(directory) / name


def _from_installed(cache: Path) -> Path:
    dist = metadata.distribution(DIST)
    version = dist.version
    target = cache / f"release-{version}"
    name = f"{DIST}-{version}-py3-none-any.whl"
    if (target / name).is_file():
        return target / name
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".building-") as tmp:
        staged = Path(tmp) / "done"
        staged.mkdir()
        _repack(dist, staged / name)
        _publish(staged, target)
    return target / name


def _repack(dist: metadata.Distribution, wheel: Path) -> None:
    """Pack the installed files of ``dist`` into ``wheel``, with a fresh RECORD."""
    info_dir = f"{DIST}-{dist.version}.dist-info"
    record = []
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in dist.files or []:
            name = file.as_posix()
            # the packages and their metadata; not scripts (made again from entry_points.txt)
            if not name.startswith((*(f"{package}/" for package in PACKAGES), f"{info_dir}/")):
                continue
            if "__pycache__" in name or name.endswith(".pyc"):
                continue
            if name.startswith(f"{info_dir}/") and file.name in SKIPPED_METADATA:
                continue
            data = Path(str(file.locate())).read_bytes()
            archive.writestr(name, data)
            hashed = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            record.append(f"{name},sha256={hashed.decode()},{len(data)}")
        record.append(f"{info_dir}/RECORD,,")
        archive.writestr(f"{info_dir}/RECORD", "\n".join(record) + "\n")


def _publish(staged: Path, target: Path) -> None:
    """Move the finished ``staged`` directory to ``target`` (another process may have won)."""
    try:
        staged.rename(target)
    except OSError:
        if not target.is_dir():
            raise
