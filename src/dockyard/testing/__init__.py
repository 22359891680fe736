"""Helpers for testing flows: run them against a throwaway Dockyard server.

::

    import pytest
    from dockyard.testing.utilities import dockyard_test_harness

    @pytest.fixture(autouse=True, scope="session")
    def dockyard_server():
        with dockyard_test_harness():
            yield
"""

from __future__ import annotations

from dockyard.testing.utilities import dockyard_test_harness

__all__ = ["dockyard_test_harness"]
