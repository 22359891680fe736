"""Request and response models of events and automations (``/api/events``, ``/api/automations``)."""

from __future__ import annotations
