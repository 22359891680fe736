"""Request and response models of artifacts (``/api/artifacts``)."""

from __future__ import annotations
