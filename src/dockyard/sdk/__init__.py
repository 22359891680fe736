"""The SDK: flows, tasks and the engine that runs them.

The public names are re-exported by :mod:`dockyard`; the modules here are the implementation.
Only :mod:`~dockyard.sdk.flows`, :mod:`~dockyard.sdk.tasks` and :mod:`~dockyard.sdk.options`
are imported by ``import dockyard``; everything a run needs is imported at its first call.
"""
