"""Request and response models of global concurrency limits (``/api/concurrency_limits``)."""

from __future__ import annotations
