"""Flows: ``from dockyard.flows import flow, Flow``.

See :mod:`dockyard.sdk.flows`.
"""

from __future__ import annotations

from dockyard.sdk.flows import Flow, flow

__all__ = ["Flow", "flow"]
