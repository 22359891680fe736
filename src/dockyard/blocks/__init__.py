"""Named objects the server stores for flows: :class:`~dockyard.blocks.system.Secret`."""

from __future__ import annotations

from dockyard.blocks.system import Secret

__all__ = ["Secret"]
