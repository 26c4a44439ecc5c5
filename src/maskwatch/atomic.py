"""Writes that never leave a half-written file or folder behind: temp, then rename."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator


def _read_umask() -> int:
    """The process's umask. Read once, when this module loads: reading it means setting it, and
    two threads doing that at once can leave it at 0 (every later file world-writable)."""
    umask = os.umask(0)
    os.umask(umask)
    return umask


UMASK = _read_umask()


def default_mode(directory: bool) -> int:
    """The mode a new output gets under the umask."""
    # mkstemp/mkdtemp create private (0600/0700) entries; outputs should get the usual umask.
    return (0o777 if directory else 0o666) & ~UMASK


def _sync(path: Path) -> None:
    """Make `path` (a file, or a folder's entries) durable: a rename is not, after a power cut,
    until the data and then the folder that names it reach the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: Path | str, suffix: str = "", durable: bool = False) -> Iterator[Path]:
    """Yield a temp path beside `target`; on success it replaces `target` in one rename. An
    existing file keeps its permissions. durable: synced to disk before and after the rename
    (a checkpoint; not every output: each fsync costs a disk round trip). A folder where the
    file is to go is refused (OutputError) before anything is written."""
    target = Path(target)
    if target.is_dir():
        raise OutputError(f"{target}: a folder is there, not a file; name the output file (nothing was written)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with in_folder(target.parent):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=f".partial{suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, default_mode(directory=False))
    try:
        yield tmp_path
        if target.is_file() and not target.is_symlink():  # after the writing: a read-only file stays so
            os.chmod(tmp_path, target.stat().st_mode & 0o7777)
        if durable:
            _sync(tmp_path)
        os.replace(tmp_path, target)
        if durable:
            with contextlib.suppress(OSError):  # some filesystems sync no folder; the rename is done
                _sync(target.parent)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextlib.contextmanager
def in_folder(folder: Path) -> Iterator[None]:
    """A folder that takes no new file (no permission, read-only) named as such: an unwritable
    --out was "OUT/..maskwatch-detect.json.qkpr5d9e.partial: Permission denied", a file the user
    never named. Other errors (a full disk) keep their file."""
    import errno

    try:
        yield
    except OSError as err:
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            err.filename, err.strerror = str(folder), f"cannot write in this folder ({err.strerror or err})"
        raise


@contextlib.contextmanager
def naming(target: Path | str) -> Iterator[None]:
    """An OSError of writing `target` names it: a write() that fails (a full disk) names no file,
    and `detect` said only "error: No space left on device", leaving a user to guess which disk."""
    try:
        yield
    except OSError as err:
        if err.filename is None and err.errno is not None:  # OSError("text") would read "[Errno None] None"
            err.filename = str(target)
        raise


STANDARD_OUTPUT = "standard output"  # what a failed print names, as a failed write names its file


def unprinted(err: OSError) -> str:
    """An error of printing on stdout as one line naming it (`standard output: No space left on
    device`), for a command that then says what it did all the same."""
    err.filename = err.filename or STANDARD_OUTPUT
    return os_error_text(err)


def os_error_text(err: OSError) -> str:
    """An OSError as one line: `PATH: No space left on device`, not Python's `[Errno 28] ...: 'PATH'`."""
    reason = err.strerror or str(err)
    if err.filename and str(err.filename) not in reason:
        return f"{err.filename}: {reason}"
    return reason


def cannot_write_in(folder: Path | str) -> str | None:
    """Why a file cannot be written in `folder` (None: it can), found by writing one: the permission
    bits alone said a read-only mount, a full disk or a filesystem that refuses writable."""
    try:
        with tempfile.TemporaryFile(dir=folder) as trial:  # removed at the close, even a failed one
            trial.write(b"\0" * 4096)  # one page: a full disk takes an empty file but not this
            trial.flush()
            os.fsync(trial.fileno())
    except OSError as err:
        return err.strerror or str(err)
    return None


def write_text(target: Path | str, text: str, mode: int | None = None) -> None:
    """mode: set before the text is written (0o600: a file that will hold passwords)."""
    with atomic_path(target) as tmp, naming(target):
        if mode is not None:
            os.chmod(tmp, mode)
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp, naming(target):
        tmp.write_bytes(data)


class OutputError(ValueError):
    """An output folder that must not be replaced: a file, or a folder of someone else's files."""


def check_replaceable(target: Path | str, own: str) -> None:
    """Refuse (OutputError) to take the place of anything but nothing, an empty folder or a
    folder this kind of output wrote before (it holds the file `own`): `--out ~/Documents`
    must not delete a user's files."""
    target = Path(target)
    if not target.exists():
        return
    check_output_folder(target)
    if (target / own).is_file():
        return
    inside = sorted(p.name for p in target.iterdir())
    if inside:
        shown = ", ".join(inside[:3]) + (", ..." if len(inside) > 3 else "")
        raise OutputError(f"{target}: a folder of other files ({shown}); maskwatch replaces only an output folder "
                          f"it wrote (one with {own}): name a new or empty folder (nothing was written)")


def check_output_folder(target: Path | str) -> Path:
    """`target`, unless a file is there where an output folder is to go (OutputError)."""
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise OutputError(f"{target}: a file is there, not a folder; name a folder for the output (nothing was written)")
    return target


def make_output_folder(target: Path | str) -> Path:
    """The folder `target`, made if need be; OutputError naming it where it cannot be (a file is
    there, no permission)."""
    target = check_output_folder(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{target}: cannot make the output folder ({err.strerror or err})") from None
    return target


@contextlib.contextmanager
def only_writer(folder: Path | str, busy: str) -> Iterator[None]:
    """`folder` for this process alone while the block runs, else OutputError(busy). An flock on the
    folder itself: no lock file among the outputs, and none held by a killed run. A filesystem that
    takes no lock on a folder (NFS emulates flock with write locks, which a folder opened read-only
    cannot hold: EBADF; others say ENOLCK or EOPNOTSUPP) runs unlocked, said: a shared folder, as a
    Ray cluster's nodes write, was refused as busy by every run."""
    import errno
    try:
        import fcntl
    except ImportError:  # Windows: no flock, and no folder opened as a file; detect ran there before the lock
        yield
        return

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise OutputError(busy) from None
            logging.getLogger(__name__).warning("%s: not locked (%s): run one command at a time into it",
                                                folder, err.strerror or err)
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_dir(target: Path | str, own: str) -> Iterator[Path]:
    """Yield a temp folder beside `target`; on success it takes `target`'s place.

    An existing `target` is only removed after the new folder is complete, so a failure
    leaves the old one untouched, and only if it is empty or an earlier output of the same
    kind, holding the file `own` (check_replaceable).
    """
    target = Path(target)
    check_replaceable(target, own)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent))
    os.chmod(tmp, default_mode(directory=True))
    try:
        yield tmp
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / "previous")
        os.replace(tmp, target)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
