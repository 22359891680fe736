"""The key secrets are stored under, and the cipher that uses it (Fernet: AES in CBC mode
with an HMAC, from ``cryptography``).

The key is the setting ``server_encryption_key`` when it is set; otherwise the one in
``$DOCKYARD_HOME/encryption.key``, written there (mode 0600) the first time a server needs
it. The file is created by linking a finished temporary file to its name: two servers that
start together both end up with the one key that won, and never read half a file.

``cryptography`` is imported at the first secret stored or read, not at the server's start.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from dockyard.exceptions import DockyardError
from dockyard.settings import Settings

if TYPE_CHECKING:
    from cryptography.fernet import Fernet as Cipher

__all__ = ["KEY_FILE", "Keyring", "check_key", "load_cipher"]

KEY_FILE = "encryption.key"


def check_key(settings: Settings) -> None:
    """Refuse, at server start, a key that is set (or in the key file) but is not a Fernet
    key. No key file is made here.

    Raises:
        DockyardError: one line saying which key is wrong and how to make a good one.
    """
    if settings.server_encryption_key is not None:
        _key_bytes(settings.server_encryption_key, "DOCKYARD_SERVER_ENCRYPTION_KEY")
        return
    path = settings.home / KEY_FILE
    if path.is_file():
        _key_bytes(_read_file(path), str(path))


def load_cipher(settings: Settings) -> Cipher:
    """Return the cipher of the server's key, making the key file if there is none.

    Raises:
        DockyardError: the key (the setting's or the file's) is not a Fernet key, or the
            key file cannot be read or written.
    """
    from cryptography.fernet import Fernet

    if settings.server_encryption_key is not None:
        source, key = "DOCKYARD_SERVER_ENCRYPTION_KEY", settings.server_encryption_key
    else:
        path = settings.home / KEY_FILE
        source = str(path)
        key = _read_file(path) if path.exists() else _create(path, Fernet.generate_key())
    return Fernet(_key_bytes(key, source))


class Keyring:
    """The cipher, loaded (and the key file made) the first time a secret is stored or read."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._cipher: Cipher | None = None
        self._lock = threading.Lock()

    async def acipher(self) -> Cipher:
        """:meth:`cipher`, for the event loop: the first call loads it in a thread (it may
        write the key file); later ones answer at once."""
        if self._cipher is not None:
            return self._cipher
        import asyncio

        return await asyncio.to_thread(self.cipher)

    def cipher(self) -> Cipher:
        with self._lock:
            if self._cipher is None:
                self._cipher = load_cipher(self._settings)
            return self._cipher


def _key_bytes(key: str, source: str) -> bytes:
    try:
        raw = key.strip().encode("ascii")
        if len(base64.urlsafe_b64decode(raw)) == 32:
            return raw
    except (ValueError, binascii.Error):
        pass
    raise DockyardError(
        f"the encryption key in {source} is not a Fernet key (32 bytes in URL-safe base64, "
        "44 characters): restore the key your secrets were saved under, or make a new one "
        "with `python -c 'from cryptography.fernet import Fernet; "
        "print(Fernet.generate_key().decode())'`"
    )


def _read_file(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise DockyardError(
            f"cannot read the encryption key file {path} ({exc}); make it readable by the "
            "server, or set DOCKYARD_SERVER_ENCRYPTION_KEY"
        ) from None


def _create(path: Path, key: bytes) -> str:
    """Write ``key`` to ``path`` unless another process did first; return the key there."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as file:
            file.write(key + b"\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return _read_file(path)  # another server made it first: share its key
    except OSError as exc:
        raise DockyardError(
            f"cannot write the encryption key file {path} ({exc}); make {path.parent} "
            "writable by the server, or set DOCKYARD_SERVER_ENCRYPTION_KEY"
        ) from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
    return key.decode("ascii")
