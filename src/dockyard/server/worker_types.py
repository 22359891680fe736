"""Worker types, registered through the ``dockyard.worker_types`` entry point group.

An entry point's value names a JSON resource, ``package:file.json``, holding the type's
``description`` and default ``base_job_template``. It is read as data: no worker code is
imported into the server.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import metadata, resources
from typing import Any

GROUP = "dockyard.worker_types"


@functools.cache
def _registry() -> dict[str, dict[str, Any]]:
    types: dict[str, dict[str, Any]] = {}
    for ep in metadata.entry_points(group=GROUP):
        package, _, filename = ep.value.partition(":")
        data = json.loads(resources.files(package).joinpath(filename).read_text())
        types[ep.name] = data
    return types


def known() -> list[str]:
    return sorted(_registry())


def get(type_name: str) -> dict[str, Any] | None:
    """The type's description and default base job template (a copy), or None."""
    entry = _registry().get(type_name)
    return copy.deepcopy(entry) if entry is not None else None
