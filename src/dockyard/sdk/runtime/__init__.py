"""The machinery of a run: context, the flow and task run loops, futures and states,
task runners, caching and results, tracking and logs.

Nothing here imports the definitions (``dockyard.sdk.flows``, ``dockyard.sdk.tasks``), the
engine or ``dockyard.sdk.deploy`` at run time: a run needs none of them.
"""
