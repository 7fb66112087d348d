"""Reading and writing files safely: size-bounded reads, UTF-8, hashing, atomic writes.

The only place that touches the file system's sharp edges for petrova's own inputs and
outputs: a read never takes more than the input limit, and a write is a temporary file
in the same folder renamed over the target, so a crash never leaves half a file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Literal, NoReturn

from petrova.errors import (
    InputTooLarge,
    Location,
    NotRegularFile,
    OutputError,
    PetrovaError,
    UnsafePath,
    UsageError,
    YamlInvalid,
)

#: A path as petrova's readers take it: hot loops pass strings, not ``pathlib`` objects.
StrPath = str | os.PathLike[str]

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


def read_input(
    path: StrPath,
    *,
    display: str | None = None,
    limit: int | None = None,
    root: StrPath | None = None,
    follow: bool = True,
) -> bytes:
    """Read a whole input file, refusing ones over the size limit before reading them.

    The file is opened without blocking and must be a regular file (a FIFO or a device
    raises :class:`~petrova.errors.NotRegularFile`, an ``OSError``, instead of hanging or
    streaming for ever). With ``root``, no component below ``root`` may be a symbolic
    link (``UNSAFE_PATH``): for files in consumer clones. ``follow=False`` refuses a link
    as the last component only.
    """
    shown = display or str(path)
    limit = max_input_bytes() if limit is None else limit
    if root is not None:
        fd = _open_below(root, path, shown)
    else:
        fd = _open_file(path, shown, follow=follow)
    try:
        size = _regular_size(fd, path)
        if size > limit:
            raise InputTooLarge(
                f"file is {size} bytes, over the {limit}-byte limit "
                "(raise it with PETROVA_MAX_INPUT_BYTES)",
                location=Location(shown),
            )
        # Ask for what fstat said and one byte more, to see growth: a read of the limit
        # itself allocates a limit-sized buffer each time, a fresh mapping whose pages
        # fault in, which at fleet scale was a fifth of a snapshot's time. Plain
        # ``os.read`` on the descriptor: no file object per input (thousands a snapshot).
        # A regular file answers in full up to its end, so fewer bytes than asked is the
        # end (no second read to hear it, 18,000 system calls a snapshot); only a short
        # read below fstat's size (a network file system) reads on.
        data = os.read(fd, size + 1)
        if len(data) < size:
            data += _read_upto(fd, size + 1 - len(data))
        if len(data) > size:  # it grew since: read on, still within the limit
            data += _read_upto(fd, limit + 1 - len(data))
    finally:
        os.close(fd)
    if len(data) > limit:
        raise InputTooLarge(
            f"file is over the {limit}-byte limit (raise it with PETROVA_MAX_INPUT_BYTES)",
            location=Location(shown),
        )
    return data


def _read_upto(fd: int, count: int) -> bytes:
    """Up to ``count`` bytes from ``fd``, fewer only at the end of the file."""
    parts = []
    while count > 0:
        more = os.read(fd, count)
        if not more:
            break
        parts.append(more)
        count -= len(more)
    return b"".join(parts)


def _open_file(path: StrPath, display: str, *, follow: bool) -> int:
    """A read-only, non-blocking descriptor on ``path``, its type not checked yet."""
    flags = _NO_WAIT
    if not follow:
        flags |= os.O_NOFOLLOW
    try:
        return os.open(path, flags)
    except OSError as exc:
        if not follow and exc.errno == errno.ELOOP and os.path.islink(path):  # noqa: PTH114
            raise UnsafePath(_LINK_REFUSED, location=Location(display)) from None
        raise


def _regular_size(fd: int, path: StrPath) -> int:
    """The size of ``fd`` when it is a regular file; a directory, FIFO, device or socket
    is refused (the caller closes ``fd``).

    The descriptor stays non-blocking: that flag changes nothing for a regular file's
    reads, so :func:`read_input` spends no two system calls clearing it.
    """
    info = os.fstat(fd)
    mode = info.st_mode
    if stat.S_ISREG(mode):
        return info.st_size
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", str(path))
    raise NotRegularFile(str(path), file_kind(mode))


#: Read-only, and never waiting for a writer (a FIFO) or a device to answer.
_NO_WAIT = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
#: A folder on the way down from a root, and the file at its end: neither followed if it
#: is a link.
_FOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_LAST = _NO_WAIT | os.O_NOFOLLOW


def _open_below(root: StrPath, path: StrPath, display: str) -> int:
    """Open ``path``, a file below ``root``, walking down from ``root`` one component at a
    time (``openat``), none of them followed if it is a symbolic link (``UNSAFE_PATH``).

    The same refusal as checking each component with ``lstat`` first, without the race
    between the check and the open, and in fewer system calls with no ``pathlib``
    objects: it runs for every contract of a snapshot. ``root`` itself (the workspace's
    clone, the folder a file was named in) is followed, as it always was.
    """
    top, full = os.fspath(root), os.fspath(path)
    # Lexical only (links are what is checked), and os.path: no pathlib objects here.
    if os.path.isabs(top) != os.path.isabs(full):  # noqa: PTH117
        top, full = os.path.abspath(top), os.path.abspath(full)  # noqa: PTH100
    top, full = os.path.normpath(top), os.path.normpath(full)
    if full == top:
        return _open_file(path, display, follow=True)  # the root: a directory, said as such
    prefix = "" if top == os.curdir else top if top.endswith(os.sep) else top + os.sep
    parts = full[len(prefix) :].split(os.sep)  # noqa: PTH206
    if not full.startswith(prefix) or parts[0] == os.pardir:
        raise UnsafePath(f"is not inside {root}", location=Location(str(path)))
    last = len(parts) - 1
    # The first component is opened through the root's own path (the root is followed,
    # its last component is not) rather than from a descriptor on the root: one open and
    # one close fewer for each of a snapshot's 9,000 contracts, the same refusals.
    folder = _open_part(root, parts, 0, os.path.join(top, parts[0]), None, last)  # noqa: PTH118
    try:
        for index in range(1, last + 1):
            fd = _open_part(root, parts, index, parts[index], folder, last)
            os.close(folder)
            folder = fd
    except BaseException:
        os.close(folder)
        raise
    return folder


def _open_part(
    root: StrPath, parts: list[str], index: int, name: str, folder: int | None, last: int
) -> int:
    """Open ``parts[index]`` (as ``name``, from ``folder``) without following a link: a
    folder on the way down, or the file at its end; a link is ``UNSAFE_PATH``."""
    try:
        return os.open(name, _LAST if index == last else _FOLDER, dir_fd=folder)
    except OSError as exc:
        here = os.path.join(root, *parts[: index + 1])  # noqa: PTH118
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(here):  # noqa: PTH114
            raise UnsafePath(_LINK_REFUSED, location=Location(here)) from None
        raise


def file_kind(mode: int) -> str:
    """What a non-regular file is, in words a person knows."""
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISDIR(mode):
        return "directory"
    if stat.S_ISLNK(mode):
        return "symbolic link"
    return "special file"


_LINK_REFUSED = (
    "is a symbolic link; petrova follows no links here, it reads only real "
    "files inside the directory (replace the link with the file itself)"
)


def clone_root(path: Path) -> Path:
    """The work tree ``path`` sits in (the nearest folder above it holding ``.git``), as
    given, or its own folder: the root below which links are refused for a file named
    explicitly on the command line (``contract validate PATH``, ``--contract PATH``)."""
    folder = Path(os.path.abspath(path)).parent  # noqa: PTH100 (resolve would follow links)
    for candidate in (folder, *folder.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return folder


def check_output(path: Path) -> None:
    """Refuse an output path that is not a regular file, a link or a new name: before
    any work, before a lock file is made beside it. Writing would replace a device or a
    FIFO with a regular file, and reading the old one to compare would block."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputError(
            f"cannot use this output: {exc.strerror}", location=Location(str(path))
        ) from None
    if stat.S_ISREG(mode) or stat.S_ISLNK(mode):
        return
    raise OutputError(
        f"is a {file_kind(mode)}, not a regular file; petrova writes only regular files "
        "(move it aside, or name another path)",
        location=Location(str(path)),
    )


def read_as(
    path: StrPath,
    error: type[PetrovaError],
    *,
    what: str,
    missing: str | None,
    directory: str | None = None,
    display: str | None = None,
    limit: int | None = None,
    root: StrPath | None = None,
    follow: bool = True,
) -> bytes:
    """:func:`read_input`, with every way a file can be unreadable said as ``error``.

    The one mapping of "missing / a directory / unreadable" for every input petrova
    reads: ``what`` names the file in messages ("the registry"), ``missing`` is the
    sentence for a file that does not exist (``None`` lets ``FileNotFoundError`` through,
    for inputs whose absence is normal), ``directory`` the one for a folder.
    """
    shown = display or str(path)
    try:
        return read_input(path, display=shown, limit=limit, root=root, follow=follow)
    except FileNotFoundError:
        if missing is None:
            raise
        raise error(missing, location=Location(shown)) from None
    except IsADirectoryError:
        said = directory or f"is a directory, not {what} file"
        raise error(said, location=Location(shown)) from None
    except OSError as exc:
        raise error(f"cannot read {what}: {exc.strerror}", location=Location(shown)) from None


def decode_text(
    raw: bytes,
    display: str,
    *,
    error: type[PetrovaError] = YamlInvalid,
    hint: str = "save the file as UTF-8",
    bom: bool = True,
) -> str:
    """UTF-8 (a leading BOM is allowed unless ``bom`` is false: then it is left in the
    text for the parser to refuse); anything else is ``error`` naming the line of the
    bad byte, then ``hint``."""
    try:
        # Plain UTF-8 in C, then the BOM dropped: the same text as the ``utf-8-sig``
        # codec, whose Python-level wrapper costs a microsecond on every file read.
        text = raw.decode("utf-8")
        if bom and text.startswith("\ufeff"):
            text = text[1:]
    except UnicodeDecodeError:
        _undecodable(raw, display, error=error, hint=hint, bom=bom)
    return text


def _undecodable(
    raw: bytes, display: str, *, error: type[PetrovaError], hint: str, bom: bool
) -> NoReturn:
    """The error :func:`decode_text` raises, worded as it always was (the byte counted
    after a BOM that the ``utf-8-sig`` codec strips)."""
    try:
        raw.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise error(
            f"byte {exc.start} is not valid UTF-8; {hint}",
            location=Location(display, line),
        ) from None
    raise AssertionError("plain UTF-8 refused what utf-8-sig read")  # cannot happen


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
            raise UnsafePath(_LINK_REFUSED, location=Location(current))
    return Path(current)


def make_folder(folder: Path) -> None:
    """``folder`` and its parents, made if missing; a failure is ``OUTPUT_ERROR`` naming it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot create the folder: {exc.strerror}", location=Location(str(folder))
        ) from None


WriteVerb = Literal["create", "update", "identical"]


def write_atomic(path: Path, data: bytes, *, durable: bool = True) -> WriteVerb:
    """Replace ``path`` with ``data`` so that readers see the old or the new file, never half.

    The temporary file lives in the same directory (same file system, so the rename is
    atomic), is fsynced before the rename, takes over the old file's mode, and is removed
    on any failure. Identical bytes are not rewritten, which keeps mtimes and caches calm.
    ``durable=False`` is for caches, which check what they read back: no fsync, and no
    reading of the old file to compare.
    """
    check_output(path)
    old = _old_bytes(path, len(data)) if durable else None
    if old == data and old is not _DIFFERENT:
        return "identical"
    existed = old is not None or (not durable and os.path.lexists(path))
    directory = path.parent
    try:
        mode = _mode_of(path) if existed else None
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


def _old_bytes(path: Path, size: int) -> bytes | None:
    """The old file's bytes when it may equal ``size`` bytes of new data, :data:`_DIFFERENT`
    when it cannot (another size, or a link, which is replaced rather than read), ``None``
    when there is none. Reads at most ``size + 1`` bytes and never blocks."""
    try:
        fd = os.open(path, _NO_WAIT | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _DIFFERENT
        raise OutputError(
            f"cannot read the file it would replace: {exc.strerror}",
            location=Location(str(path)),
        ) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OutputError(
                f"is a {file_kind(info.st_mode)}, not a regular file; petrova writes only "
                "regular files (move it aside, or name another path)",
                location=Location(str(path)),
            )
        if info.st_size != size:
            return _DIFFERENT
        return handle.read(size + 1)


#: Stands for an old file that cannot equal the new data (another size, or a link).
_DIFFERENT = b"\0petrova: not the same\0"


def _mode_of(path: Path) -> int | None:
    """The permission bits the new file takes over; ``None`` (the umask's) for a link
    that leads nowhere."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return None


def _fsync_dir(directory: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
