"""Deployments: describing and registering them, serving them, building their images,
where their code comes from (sources, git, pull steps), and starting their runs.

Nothing here imports the definitions (``dockyard.sdk.flows``, ``dockyard.sdk.tasks``) or
the engine at run time.
"""
