"""Where results are kept: storages and result records.

A **storage** keeps bytes under keys (``/``-separated relative paths):

- a local folder, given as a path (the default: ``$DOCKYARD_HOME/storage``);
- an fsspec URL such as ``s3://bucket/prefix`` or ``memory://results``, when the optional
  ``fsspec`` package (and the one of the URL's protocol) is installed;
- any object with ``write_path(path, content)`` and ``read_path(path)`` methods.

A **serializer** (:mod:`~dockyard.sdk.runtime.serializers`) turns a value into bytes and
back.

A **result record** is one entry of a storage: a line of JSON (what the value is, how it is
serialized, when it expires) followed by the serialized value::

    {"key": "...", "serializer": "pickle", "created": 1718000000.0, "expires": null}
    <the value, as the serializer wrote it>

A record whose JSON holds ``"storage_key"`` and no value points to the record of that key.
Records are written whole (a local file is written to a temporary file, then renamed), and a
record that cannot be read (truncated, from another version, of a class that is gone) counts
as missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias, runtime_checkable

from dockyard.exceptions import DockyardError
from dockyard.sdk.runtime.serializers import (
    PICKLE,
    Serializer,
    resolve_serializer,
    serializer_name,
)

if TYPE_CHECKING:
    from dockyard.settings import Settings

__all__ = [
    "MISS",
    "FsspecStorage",
    "Journal",
    "LocalStorage",
    "ObjectStorage",
    "Record",
    "ResultStorage",
    "ResultStore",
    "Storage",
    "check_storage",
    "default_storage",
    "record_name",
    "resolve_storage",
]

MISS: Any = object()
"""What a read returns when there is no valid record."""


@runtime_checkable
class WritableStorage(Protocol):
    """A storage object of the user's: a block-like ``write_path`` / ``read_path`` pair."""

    def write_path(self, path: str, content: bytes) -> Any: ...

    def read_path(self, path: str) -> Any: ...


ResultStorage: TypeAlias = "str | os.PathLike[str] | WritableStorage"
"""What ``result_storage=`` takes: a folder path, an fsspec URL or a storage object."""


# ---------------------------------------------------------------- storages


class Storage:
    """Bytes by key. Reads of a missing key return None."""

    def read(self, key: str) -> bytes | None:
        raise NotImplementedError

    def write(self, key: str, data: bytes) -> None:
        raise NotImplementedError

    def delete(self, prefix: str) -> None:
        """Delete the entry ``prefix``, or every entry under it (nothing if there is none)."""

    def names(self, prefix: str) -> set[str] | None:
        """Return the names of the entries directly under ``prefix`` (None: cannot list)."""
        return None

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        """Hold the lock of ``key`` (SERIALIZABLE isolation of cache records)."""
        raise DockyardError(
            f"the cache records in {self} cannot be locked: SERIALIZABLE isolation needs a "
            "local folder as key storage (cache_policy.configure(key_storage=PATH, "
            "isolation_level='SERIALIZABLE'))"
        )
        yield  # pragma: no cover

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LocalStorage(Storage):
    """Entries as files under ``root``: the key ``a/b`` is the file ``root/a/b``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser()
        self._thread_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def path(self, key: str) -> Path:
        """Return the file of ``key``."""
        return self.root.joinpath(*key.split("/"))

    def read(self, key: str) -> bytes | None:
        try:
            return self.path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None

    def write(self, key: str, data: bytes) -> None:
        import tempfile

        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def delete(self, prefix: str) -> None:
        path = self.path(prefix)
        if path.is_dir():
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    def names(self, prefix: str) -> set[str] | None:
        try:
            return {n for n in os.listdir(self.path(prefix)) if not n.startswith(".")}
        except (FileNotFoundError, NotADirectoryError):
            return set()

    @contextlib.contextmanager
    def lock(self, key: str) -> Iterator[None]:
        # A file lock keeps out other processes; it is taken per open file, so threads of
        # this process each open their own.
        import hashlib

        path = self.root / ".locks" / f"{hashlib.sha256(key.encode()).hexdigest()}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            import fcntl
        except ImportError:  # no file locks here: keep out the threads of this process
            with self._guard:
                thread_lock = self._thread_locks.setdefault(key, threading.Lock())
            with thread_lock:
                yield
            return
        with path.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"


class FsspecStorage(Storage):
    """Entries under an fsspec URL (``s3://bucket/prefix``, ``memory://x``, ...).

    The filesystem is opened at first use: a missing package fails the run that uses it.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._fs: Any = None
        self.root = ""

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the URL (see :meth:`_open`)."""
        return self._open()

    def _open(self) -> Any:
        """Open the URL's filesystem, once.

        Raises:
            DockyardError: fsspec (or the package of the URL's protocol) is not installed.
        """
        if self._fs is None:
            import importlib

            try:
                fs, root = importlib.import_module("fsspec.core").url_to_fs(self.url)
            except ImportError as exc:
                raise DockyardError(
                    f"result storage {self.url!r} needs {exc.name or 'fsspec'}: `pip install "
                    "fsspec` (and the package of its protocol, such as s3fs for s3://), or give "
                    "a local folder"
                ) from None
            self.root = str(root).rstrip("/")
            self._fs = fs
        return self._fs

    def _path(self, key: str) -> str:
        self._open()  # sets the root
        return f"{self.root}/{key}" if self.root else key

    def read(self, key: str) -> bytes | None:
        try:
            data = self.fs.cat_file(self._path(key))
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        return bytes(data)

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        parent = path.rpartition("/")[0]
        if parent:
            self.fs.makedirs(parent, exist_ok=True)
        self.fs.pipe_file(path, data)

    def delete(self, prefix: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm(self._path(prefix), recursive=True)

    def names(self, prefix: str) -> set[str] | None:
        try:
            entries = self.fs.ls(self._path(prefix), detail=False)
        except (FileNotFoundError, NotADirectoryError):
            return set()
        return {str(e).rstrip("/").rpartition("/")[2] for e in entries}

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url!r})"


class ObjectStorage(Storage):
    """Entries kept by a storage object of the user's (``write_path`` / ``read_path``)."""

    def __init__(self, target: WritableStorage) -> None:
        self.target = target

    def read(self, key: str) -> bytes | None:
        try:
            data = self.target.read_path(key)
        except (FileNotFoundError, ValueError, OSError):
            return None
        return bytes(data) if data is not None else None

    def write(self, key: str, data: bytes) -> None:
        self.target.write_path(key, data)

    def __repr__(self) -> str:
        return f"ObjectStorage({self.target!r})"


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
_resolved: dict[str, Storage] = {}
_resolved_lock = threading.Lock()


def check_storage(spec: Any, owner: str) -> None:
    """Check that ``spec`` can be a result storage (without importing or opening anything).

    Raises:
        ValueError: it is neither a path, a URL nor a storage object.
    """
    if isinstance(spec, str | os.PathLike | Storage | WritableStorage) and spec != "":
        return
    raise ValueError(
        f"{owner} result_storage must be a folder path, an fsspec URL such as "
        f"'s3://bucket/prefix', or an object with write_path and read_path methods, not {spec!r}"
    )


def resolve_storage(spec: Any) -> Storage:
    """Return the storage ``spec`` (a path, a URL or a storage object) stands for.

    Raises:
        DockyardError: a URL whose protocol needs a package that is not installed.
    """
    if isinstance(spec, Storage):
        return spec
    if isinstance(spec, str | os.PathLike):
        text = os.fspath(spec)
        with _resolved_lock:
            found = _resolved.get(text)
            if found is None:
                if text.startswith("file://"):
                    found = LocalStorage(text[len("file://") :])
                elif _URL.match(text):
                    found = FsspecStorage(text)
                else:
                    found = LocalStorage(text)
                _resolved[text] = found
            return found
    return ObjectStorage(spec)


def default_storage(settings: Settings) -> Storage:
    """Return the default result storage: the folder ``$DOCKYARD_HOME/storage``."""
    return resolve_storage(settings.home / "storage")


# ---------------------------------------------------------------- records

_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")


def record_name(key: str) -> str:
    """Return the entry name of the record of ``key``: the key itself when it is a plain file
    name (letters, digits, ``.``, ``_``, ``-``), else ``sha256-`` and its digest."""
    if _PLAIN_NAME.fullmatch(key):
        return key
    import hashlib

    return "sha256-" + hashlib.sha256(key.encode()).hexdigest()


def _entry(folder: str, key: str) -> str:
    return f"{folder}/{record_name(key)}" if folder else record_name(key)


class Record:
    """A result record read back: its JSON header and its value's bytes."""

    __slots__ = ("meta", "payload")

    def __init__(self, meta: dict[str, Any], payload: bytes) -> None:
        self.meta = meta
        self.payload = payload

    @staticmethod
    def pack(meta: dict[str, Any], payload: bytes = b"") -> bytes:
        """Return the bytes of a record."""
        return json.dumps(meta, separators=(",", ":")).encode() + b"\n" + payload

    @staticmethod
    def unpack(data: bytes | None) -> Record | None:
        """Return the record in ``data``, or None if there is none or it is broken."""
        if data is None:
            return None
        head, newline, payload = data.partition(b"\n")
        if not newline:
            return None
        try:
            meta = json.loads(head)
        except ValueError:
            return None
        return Record(meta, payload) if isinstance(meta, dict) else None

    @property
    def expired(self) -> bool:
        """Whether the record's ``expires`` time has passed."""
        expires = self.meta.get("expires")
        return isinstance(expires, int | float) and time.time() >= expires


class Journal:
    """Records appended to one local file: a record costs one write, not a new file.

    Each entry is the length of a record (8 bytes, big-endian) and the record. A process
    killed while appending leaves a partial last entry, which :meth:`read` leaves out.

    Args:
        path: the file (made at the first append).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: Any = None
        self._lock = threading.Lock()

    def read(self) -> dict[str, Record]:
        """Return the whole entries by key (the last one of a key wins)."""
        try:
            data = self.path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return {}
        found: dict[str, Record] = {}
        at = 0
        while at + 8 <= len(data):
            size = int.from_bytes(data[at : at + 8], "big")
            at += 8
            if at + size > len(data):
                break
            record = Record.unpack(data[at : at + size])
            at += size
            if record is not None and isinstance(record.meta.get("key"), str):
                found[record.meta["key"]] = record
        return found

    def append(self, record: bytes) -> None:
        """Append one record (written through to the file, which outlives this process)."""
        with self._lock:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("ab", buffering=0)
            self._file.write(len(record).to_bytes(8, "big") + record)

    def close(self) -> None:
        """Close the file (it stays)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


class ResultStore:
    """Values kept as result records in a storage, written with a serializer.

    Args:
        storage: where the records are kept.
        serializer: how values are written (records are read with the serializer they name).
    """

    def __init__(self, storage: Storage, serializer: Serializer = PICKLE) -> None:
        self.storage = storage
        self.serializer = serializer

    def pack(self, key: str, value: Any | None = None, *, refer_to: str = "", **meta: Any) -> bytes:
        """Return the record of ``key``: ``value`` serialized, with ``meta`` in its header;
        or, given ``refer_to``, a record that points to the record of that storage key.

        Raises:
            Exception: what the serializer raises for a value it cannot write.
        """
        header: dict[str, Any] = {"key": key, "created": time.time(), **meta}
        if refer_to:
            header["storage_key"] = refer_to
            return Record.pack(header)
        payload = self.serializer.dumps(value)
        header["serializer"] = serializer_name(self.serializer)
        return Record.pack(header, payload)

    def write(self, key: str, value: Any, *, folder: str = "", **meta: Any) -> None:
        """Keep ``value`` as the record of ``key`` (in ``folder``), with ``meta`` in its header.

        Raises:
            Exception: what the serializer raises for a value it cannot write, or the
                storage for an entry it cannot write.
        """
        self.storage.write(_entry(folder, key), self.pack(key, value, **meta))

    def read_record(self, key: str, *, folder: str = "") -> Record | None:
        """Return the record of ``key`` (None if there is none, or it is another key's)."""
        record = Record.unpack(self.storage.read(_entry(folder, key)))
        if record is None or record.meta.get("key") != key:
            return None
        return record

    def value(self, record: Record) -> Any:
        """Return the value of ``record`` (following a reference), or :data:`MISS`."""
        target = record.meta.get("storage_key")
        if isinstance(target, str):
            found = self.read_record(target)
            if found is None or found.expired or "storage_key" in found.meta:
                return MISS
            record = found
        serializer = resolve_serializer(record.meta.get("serializer"), self.serializer)
        try:
            return serializer.loads(record.payload)
        except Exception:
            # from another version, or of a class that is gone: as if it were not there
            return MISS

    def read(self, key: str) -> Any:
        """Return the value kept under ``key``, or :data:`MISS` (none, expired, unreadable)."""
        record = self.read_record(key)
        if record is None or record.expired:
            return MISS
        return self.value(record)
