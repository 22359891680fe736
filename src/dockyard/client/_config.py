"""Where a client's URL and key come from, and whether the server speaks our API version."""

from __future__ import annotations

from dockyard import schemas, settings
from dockyard._version import __version__
from dockyard.client._core import check_api_url
from dockyard.exceptions import IncompatibleServer


def resolve(api_url: str | None, api_key: str | None) -> tuple[str, str | None]:
    """Return the API URL and key, reading the settings for whichever is None."""
    if api_url is None or api_key is None:
        loaded = settings.load()
        api_url = loaded.api_url if api_url is None else api_url
        api_key = loaded.api_key if api_key is None else api_key
    return check_api_url(api_url), api_key or None


def version_mismatch(api_url: str, server: schemas.ServerVersion) -> IncompatibleServer | None:
    """Return the error to raise if ``server`` speaks another API version, else None."""
    if server.api_version == schemas.API_VERSION:
        return None
    return IncompatibleServer(
        f"the server at {api_url} speaks API version {server.api_version} "
        f"(dockyard {server.server_version}), but this client speaks API version "
        f"{schemas.API_VERSION} (dockyard {__version__}); install the same Dockyard "
        "version on both sides"
    )
