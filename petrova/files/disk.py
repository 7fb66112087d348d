"""Reading and writing files safely: size-bounded reads, UTF-8, hashing, atomic writes.

The only place that touches the file system's sharp edges for petrova's own inputs and
outputs: a read never takes more than the input limit, and a write is a temporary file
in the same folder renamed over the target, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Literal

from petrova.errors import (
    InputTooLarge,
    Location,
    OutputError,
    UnsafePath,
    UsageError,
    YamlInvalid,
)

#: Inputs larger than this are refused before parsing (override: PETROVA_MAX_INPUT_BYTES).
DEFAULT_MAX_INPUT_BYTES = 64 * 1024 * 1024


def max_input_bytes() -> int:
    raw = os.environ.get("PETROVA_MAX_INPUT_BYTES")
    if raw is None:
        return DEFAULT_MAX_INPUT_BYTES
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise UsageError(f"PETROVA_MAX_INPUT_BYTES={raw!r} is not a positive whole number of bytes")
    return value


def read_input(path: Path, *, display: str | None = None, limit: int | None = None) -> bytes:
    """Read a whole input file, refusing ones over the size limit before reading them."""
    shown = display or str(path)
    limit = max_input_bytes() if limit is None else limit
    with path.open("rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size > limit:
            raise InputTooLarge(
                f"file is {size} bytes, over the {limit}-byte limit "
                "(raise it with PETROVA_MAX_INPUT_BYTES)",
                location=Location(shown),
            )
        # Ask for what fstat said (and one byte more, to see growth): a read of the limit
        # itself allocates a limit-sized buffer each time, a fresh mapping whose pages
        # fault in, which at fleet scale was a fifth of a snapshot's time.
        data = handle.read(size + 1)
        if len(data) > size:  # it grew since: read on, still within the limit
            data += handle.read(limit + 1 - len(data))
    if len(data) > limit:
        raise InputTooLarge(
            f"file is over the {limit}-byte limit (raise it with PETROVA_MAX_INPUT_BYTES)",
            location=Location(shown),
        )
    return data


def decode_text(raw: bytes, display: str) -> str:
    """UTF-8 (a leading BOM is allowed); anything else names the line of the bad byte."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise YamlInvalid(
            f"byte {exc.start} is not valid UTF-8; save the file as UTF-8",
            location=Location(display, line),
        ) from None
    return text


def sha12(data: bytes) -> str:
    """What ``sha256sum FILE | cut -c1-12`` prints: the pin format of SPEC §3."""
    return hashlib.sha256(data).hexdigest()[:12]


def confined(root: Path, relpath: Path) -> Path:
    """``root / relpath``, refusing a symbolic link anywhere below ``root`` on the way.

    For files read from a consumer repo, which petrova does not control: a link there
    could point at any file on the machine (an env file with the ingest token), and
    what petrova reads ends up in messages and in the published snapshot.
    """
    current = str(root)  # strings: this runs twice per repo in a snapshot
    for part in relpath.parts:
        if part in ("", ".", ".."):
            raise UnsafePath(f"{relpath} leaves {root}", location=Location(str(root / relpath)))
        current = os.path.join(current, part)  # noqa: PTH118
        if os.path.islink(current):  # noqa: PTH114
            raise UnsafePath(
                "is a symbolic link; petrova follows no links here, it reads only real "
                "files inside the directory (replace the link with the file itself)",
                location=Location(current),
            )
    return Path(current)


WriteVerb = Literal["create", "update", "identical"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> WriteVerb:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    The temporary file lives in the same directory (same file system, so the rename is
    atomic), is fsynced before the rename, takes over the old file's mode, and is removed
    on any failure. Identical bytes are not rewritten, which keeps mtimes and caches calm.
    ``durable=False`` is for caches, which check what they read back: no fsync, and no
    reading of the old file to compare.
    """
    old = _old_bytes(path) if durable else None
    if old == data:
        return "identical"
    existed = old is not None or (not durable and path.exists())
    directory = path.parent
    try:
        mode = path.stat().st_mode & 0o7777 if existed else None
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as exc:
        raise OutputError(
            f"cannot write here: {exc.strerror}", location=Location(str(path))
        ) from None
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            if durable:
                os.fsync(handle.fileno())
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        tmp.chmod(mode)
        tmp.replace(path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):  # a full disk, an I/O error: the old file stays
            raise OutputError(
                f"cannot write here: {exc.strerror or exc}; the file was left as it was",
                location=Location(str(path)),
            ) from None
        raise
    if durable:
        _fsync_dir(directory)
    return "update" if existed else "create"


def _old_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise OutputError("is a directory, not a file", location=Location(str(path))) from None
    except OSError as exc:
        raise OutputError(
            f"cannot read the file it would replace: {exc.strerror}", location=Location(str(path))
        ) from None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
