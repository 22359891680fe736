"""``scripts/build-base-image.sh --print-mirror``: the Debian mirror it takes from apt's
sources, run against sample source files (nothing is built, nothing is fetched)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "build-base-image.sh"

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""
NODE_SOURCES = """\
Types: deb
URIs: https://deb.nodesource.example/node_20.x
Suites: nodistro
Components: main
"""
DOCKER_LIST = "deb [arch=amd64 signed-by=/etc/apt/keyrings/docker.gpg] https://download.docker.example/linux/debian bookworm stable\n"  # noqa: E501
UBUNTU_LIST = "deb http://archive.ubuntu.example/ubuntu jammy main restricted\n"
SECURITY_LIST = "deb http://security.debian.example/debian-security bookworm-security main\n"


def print_mirror(apt_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DEBIAN_MIRROR"}
    return subprocess.run(
        ["bash", str(SCRIPT), "--print-mirror"],
        env={**clean, "DOCKYARD_APT_DIR": str(apt_dir), **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def apt_dir(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "apt"
    (root / "sources.list.d").mkdir(parents=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.fixture(autouse=True)
def _needs_bash_and_awk() -> None:
    if not (shutil.which("bash") and shutil.which("awk")):
        pytest.skip("bash and awk are needed to run the script")


@pytest.mark.parametrize(
    ("files", "mirror"),
    [
        pytest.param(
            {"sources.list.d/debian.sources": DEBIAN_SOURCES},
            "http://mirror.example/debian",
            id="deb822",
        ),
        pytest.param(
            {
                "sources.list.d/a-node.sources": NODE_SOURCES,
                "sources.list.d/b-docker.list": DOCKER_LIST,
                "sources.list.d/c-debian.sources": DEBIAN_SOURCES,
            },
            "http://mirror.example/debian",
            id="third-party-repositories-first",
        ),
        pytest.param(
            {
                "sources.list": SECURITY_LIST
                + "# deb http://commented.example/debian bookworm main\n"
                + "deb-src http://source.example/debian bookworm main\n"
                + "deb [ arch=amd64 ] http://one-line.example/debian/ bookworm main contrib\n",
                "sources.list.d/debian.sources": DEBIAN_SOURCES,
            },
            "http://one-line.example/debian",
            id="sources-list-first-with-options",
        ),
        pytest.param(
            {
                "sources.list.d/debian.sources": "Types: deb\nURIs: http://off.example/debian\n"
                "Suites: bookworm\nComponents: main\nEnabled: no\n\n"
                "Types: deb deb-src\nURIs:\n http://cache.example:3142/deb.debian.org/debian\n"
                "Suites: bookworm\nComponents: contrib main\n",
            },
            "http://cache.example:3142/deb.debian.org/debian",
            id="disabled-stanza-and-continued-uris",
        ),
        pytest.param(
            {
                "sources.list.d/snapshot.list": "deb http://snapshot.debian.example/archive/"
                "debian/20250520T000000Z bookworm main\n"
            },
            "http://snapshot.debian.example/archive/debian/20250520T000000Z",
            id="snapshot",
        ),
    ],
)
def test_the_mirror_comes_from_apts_sources(
    tmp_path: Path, files: dict[str, str], mirror: str
) -> None:
    found = print_mirror(apt_dir(tmp_path, files))
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == mirror


def test_a_mirror_list_file_gives_its_first_mirror(tmp_path: Path) -> None:
    mirrors = tmp_path / "debian.list"
    mirrors.write_text("# the closest first\nhttp://near.example/debian\tpriority:1\n")
    sources = f"Types: deb\nURIs: mirror+file://{mirrors}\nSuites: bookworm\nComponents: main\n"
    found = print_mirror(apt_dir(tmp_path, {"sources.list.d/debian.sources": sources}))
    assert found.stdout.strip() == "http://near.example/debian", found.stderr


def test_debian_mirror_overrides_apt(tmp_path: Path) -> None:
    root = apt_dir(tmp_path, {"sources.list.d/debian.sources": DEBIAN_SOURCES})
    found = print_mirror(root, DEBIAN_MIRROR="http://chosen.example/debian")
    assert found.stdout.strip() == "http://chosen.example/debian"


def test_no_debian_mirror_is_a_clear_failure(tmp_path: Path) -> None:
    root = apt_dir(
        tmp_path,
        {
            "sources.list": UBUNTU_LIST + SECURITY_LIST,
            "sources.list.d/docker.list": DOCKER_LIST,
            "sources.list.d/node.sources": NODE_SOURCES,
            # apt reads only *.list and *.sources: a renamed file is not a source
            "sources.list.d/debian.sources.disabled": DEBIAN_SOURCES,
        },
    )
    found = print_mirror(root)
    assert found.returncode == 1
    assert found.stdout == ""
    assert "no Debian mirror found in apt's sources" in found.stderr
    assert "set DEBIAN_MIRROR" in found.stderr
