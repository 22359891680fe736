"""The UI's routes, one module per page family."""
