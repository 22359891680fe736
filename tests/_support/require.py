"""A missing real part skips a test when run by hand and fails it in CI."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1")


def require(condition: object, reason: str) -> None:
    """Skip (by hand) or fail (with ``CI=true``) the current test unless ``condition`` holds.

    CI installs every part, so a part missing there is a broken CI, never a reason to skip.
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing part fails instead of skipping)", pytrace=False)
    pytest.skip(reason)
