"""Default base job templates of the built-in worker types, as plain JSON data.

The server reads these through the ``dockyard.worker_types`` entry points without importing
any worker code.
"""
