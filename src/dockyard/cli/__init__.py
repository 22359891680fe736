"""The ``dockyard`` command: one module per command group, assembled in :mod:`.main`.

Group modules import only typer at module level; each command imports the client, the
schemas or the server inside its body, so a command loads only what it uses.
"""
