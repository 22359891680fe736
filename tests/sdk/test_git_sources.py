"""Telling git sources from directories, and keeping credentials out of messages."""

from __future__ import annotations

import pytest

from dockyard.sdk.deploy.git import is_git_source, redact


@pytest.mark.parametrize(
    ("source", "is_git"),
    [
        ("https://github.com/org/repo.git", True),
        ("https://github.com/org/repo", True),
        ("ssh://git@host/repo", True),
        ("git@github.com:org/repo.git", True),
        ("file:///srv/repo.git", True),
        ("/srv/repos/flows.git", True),
        ("../flows.git/", True),
        ("/srv/project", False),
        ("project", False),
        (".", False),
    ],
)
def test_git_sources_and_directories(source: str, is_git: bool) -> None:
    assert is_git_source(source) is is_git


def test_credentials_are_left_out_of_messages() -> None:
    assert redact("https://user:t0ken@host/r.git") == "https://***@host/r.git"
    assert redact("git@host:org/r.git") == "git@host:org/r.git"
