"""``python -m dockyard.engine FLOW_RUN_ID``: run one flow run of a deployment.

What infrastructure starts for each run; see :mod:`dockyard.sdk.engine` for the steps.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main() -> None:
    """Run the flow run named on the command line and exit with its status."""
    from dockyard.sdk.engine import main as run

    sys.exit(run(sys.argv[1:]))


if __name__ == "__main__":
    main()
