"""Saving a model in timm's local-dir layout: atomically, durably, and never at the cost of a user's files.

``config.json`` (architecture, num_classes, label_names, pretrained_cfg) + ``model.safetensors``,
written by timm's own ``save_for_hf`` into a temporary folder beside the target, fsynced, then
swapped into place. The rules (docs/RELIABILITY.md has the faults they were tried against):

- Only what SqueezeLens wrote is ever replaced: a folder that holds anything besides
  :data:`OWN_ENTRIES` (a ``NOTES.txt``, an ``eval-results/``, a dataset...) is refused with an
  :class:`~.errors.OutputError`, before and after training. ``versions/`` (issue 16's earlier
  versions) is SqueezeLens' own and moves into the new folder.
- The swap is one ``renameat2(RENAME_EXCHANGE)`` where Linux offers it, else two renames; either way
  a save killed at any point is repaired by the next save into that folder (:func:`recover`): a
  previous model left only as ``.NAME.old-PID`` is put back, ``versions/`` stranded in a temporary
  folder is moved home, and temporary folders of dead processes are removed.
- Files and folders are fsynced before and after the swap; one save at a time per parent folder
  (an ``flock`` on it), so two runs into one folder both finish and the folder holds one whole model.
- A symlinked output folder stays a symlink: its target is what gets replaced. The folder and files
  keep the previous model's modes (else the umask's), never mkdtemp's 0700/0600.
- A model with NaN or infinite weights is refused (:func:`check_finite`).

:data:`fault_hook` is called at each step of :data:`SAVE_STEPS`; tests set it to kill the process
there and check that nothing is lost.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import glob
import os
import re
import shutil
import stat
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .errors import OutputError, SqueezeLensError, UsageError, WeightsError

#: What a saved-model folder of SqueezeLens' may hold; anything else is the user's.
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
OWN_ENTRIES = frozenset({"config.json", *WEIGHT_FILES, "versions"})
#: The folder of earlier versions (issue 16): SqueezeLens' own, kept across saves.
VERSIONS_DIR = "versions"
#: The steps of a save, in order, at which :data:`fault_hook` is called. ``old-aside`` only happens
#: where the exchange is not available (two renames).
SAVE_STEPS = ("locked", "recovered", "written", "synced", "old-aside", "swapped", "versions-moved", "done")
#: Called with each step's name; ``None`` in normal use. Tests kill the process inside it.
fault_hook: Callable[[str], None] | None = None
#: Use ``renameat2(RENAME_EXCHANGE)`` when the platform has it (tests turn it off to try the fallback).
use_rename_exchange = True
#: Threads of one process share a PID (the temporary folders' names): they save one at a time.
_THREAD_LOCK = threading.Lock()

#: ``.NAME.new-PID``, ``.NAME.old-PID``, and ``.NAME.saving-RANDOM`` of earlier releases (no PID).
_TEMP = re.compile(r"^\.(?P<name>.+)\.(?P<kind>new|old|saving)-(?P<tag>[^.]+)$")


def _fault(step: str) -> None:
    if fault_hook is not None:
        fault_hook(step)


def save_model(
    model: Any,
    out_dir: str | os.PathLike,
    label_names: Sequence[str] | None = None,
    extra_config: dict[str, Any] | None = None,
    *,
    data_dir: str | os.PathLike | None = None,
) -> Path:
    """Write ``model`` to ``out_dir`` (replacing a previous model there only once all is written and synced).

    Args:
        model: a timm model (CPU).
        out_dir: the model folder; a symlink to a folder keeps being one (its target is replaced).
        label_names: one per class, stored as ``label_names`` in ``config.json``.
        extra_config: more keys for ``config.json`` (SqueezeLens' own, which timm ignores).
        data_dir: the dataset the model was trained on; refused when it lies inside ``out_dir``.

    Returns:
        ``out_dir`` as given.

    Raises:
        UsageError: ``label_names`` does not match the number of classes.
        WeightsError: the model holds NaN or infinite weights (nothing is written).
        OutputError: ``out_dir`` is a file, holds something SqueezeLens did not write, holds
            ``data_dir``, or cannot be written (the disk is full, read-only...); the folder is then
            as it was and no temporary folder is left.
    """
    from timm.models import save_for_hf

    given = Path(out_dir)
    if label_names is not None and len(label_names) != model.num_classes:
        raise UsageError(f"{len(label_names)} label names for a model with {model.num_classes} classes")
    check_finite(model)
    out = _real_target(given)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the folder: {e.strerror or e}", str(out.parent)) from e
    with _save_lock(out.parent) as locked:
        _fault("locked")
        recover(out, locked=locked)
        _fault("recovered")
        check_replaceable(given, data_dir)
        tmp = out.with_name(f".{out.name}.new-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            config: dict[str, Any] = dict(extra_config or {})
            if label_names is not None:
                config["label_names"] = list(label_names)
            tmp.mkdir()
            save_for_hf(model, str(tmp), model_config=config, safe_serialization=True)
            _fault("written")
            _set_modes(tmp, out)
            _fsync_tree(tmp)
            _fault("synced")
            _swap_into_place(tmp, out)
        except BaseException as e:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(e, (OutputError, KeyboardInterrupt, SystemExit)):
                raise
            if isinstance(e, Exception):
                raise OutputError(f"cannot write the model: {write_failure_reason(e)}; the folder was not changed",
                                  str(given)) from e
            raise
    return given


def write_failure_reason(e: BaseException) -> str:
    """A person's words for why writing failed (OSError, safetensors' and torch's own errors alike)."""
    text = str(e)
    if isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space left" in text or "StorageFull" in text:
        return "the disk is full"
    if isinstance(e, OSError) and e.errno == errno.EROFS or "Read-only file system" in text:
        return "the disk is read-only"
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return "permission denied"
    if isinstance(e, OSError) and e.errno == errno.EFBIG or "File too large" in text:
        return "the file grew larger than this disk or account allows"
    if isinstance(e, OSError):
        return e.strerror or text
    return f"{type(e).__name__}: {text[:200]}"


def check_finite(model: Any) -> None:
    """Refuse a model with a NaN or infinite value in any floating-point tensor of its ``state_dict``.

    Raises:
        WeightsError: naming the first such tensor.
    """
    import torch

    for name, t in model.state_dict().items():
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            raise WeightsError(f"the model's weights hold NaN or infinite values (first in {name}); "
                               "it was not saved or used")


def foreign_entries(folder: str | os.PathLike) -> list[str]:
    """Names in ``folder`` that SqueezeLens did not write (not :data:`OWN_ENTRIES`, not its hidden temp names)."""
    p = Path(folder)
    if not p.is_dir():
        return []
    return sorted(c.name for c in p.iterdir() if c.name not in OWN_ENTRIES)


def check_replaceable(out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None) -> None:
    """Refuse an output folder whose replacement would delete something that is not SqueezeLens' own.

    Raises:
        OutputError: ``out_dir`` is a file, holds entries other than :data:`OWN_ENTRIES` (named in
            the message, at most five), or holds ``data_dir``.
    """
    out = Path(out_dir)
    target = _real_target(out)
    if target.exists() and not target.is_dir():
        raise OutputError("exists and is not a folder", str(out))
    if data_dir is not None:
        d, o = Path(data_dir).resolve(), target.resolve()
        if d == o or o in d.parents:
            raise OutputError(f"holds the dataset {data_dir}; saving here would replace it. "
                              "Give another output folder", str(out))
    try:
        extra = foreign_entries(target)
    except OSError as e:
        raise OutputError(f"cannot read the folder: {e.strerror or e}", str(out)) from e
    if extra:
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise OutputError(f"holds files SqueezeLens did not write ({shown}); they would be lost. "
                          "Move them out or give another output folder", str(out))


def recover(out_dir: str | os.PathLike, *, locked: bool = False) -> list[str]:
    """Repair what killed saves into ``out_dir`` left behind.

    A ``.NAME.old-PID`` is put back when ``NAME`` is missing (killed between the two renames of the
    fallback swap), else removed; a ``versions/`` left in a temporary folder moves back into ``NAME``
    when that has none; ``.NAME.new-PID``/``.NAME.saving-*`` folders of processes that are gone are
    removed. With ``locked`` (this process holds the folder lock, so no other save is in progress)
    every such folder is stale; without it, folders named after a live process are left alone.

    Returns:
        What was done, one line each (for a log).
    """
    out = Path(out_dir)
    done: list[str] = []
    try:
        siblings = list(out.parent.iterdir())
    except OSError:
        return done
    temps = []
    for p in siblings:
        m = _TEMP.match(p.name)
        if not m or m["name"] != out.name or not p.is_dir() or p.is_symlink():
            continue
        pid = int(m["tag"]) if m["tag"].isdigit() else -1
        if locked or pid == os.getpid() or not _pid_alive(pid):
            temps.append((m["kind"], p))
    for kind, p in sorted(temps, key=lambda t: t[0] != "old"):  # old ones first: they may be the only model
        try:
            if kind == "old" and not out.exists() and not out.is_symlink():
                p.rename(out)
                done.append(f"restored the previous model from {p.name}")
                continue
            versions = p / VERSIONS_DIR
            if out.is_dir() and versions.is_dir() and not (out / VERSIONS_DIR).exists():
                versions.rename(out / VERSIONS_DIR)
                done.append(f"moved {VERSIONS_DIR}/ back from {p.name}")
            shutil.rmtree(p)
            done.append(f"removed {p.name}")
        except OSError:
            continue
    if done:
        _fsync_dir(out.parent)
    return done


def recover_interrupted_save(out_dir: str | os.PathLike) -> None:
    """Run :func:`recover` for ``out_dir`` under the folder lock when a save into it left temporary folders.

    Cheap when there are none (one listing of the parent); never raises (a start must not fail on it).
    """
    out = _real_target(Path(out_dir))
    try:
        if not any(_TEMP.match(p.name) for p in out.parent.glob(f".{glob.escape(out.name)}.*")):
            return
        with _THREAD_LOCK, _folder_lock(out.parent) as locked:
            recover(out, locked=locked)
    except (OSError, SqueezeLensError):
        return


# -- the steps ------------------------------------------------------------------------------------
def _real_target(out: Path) -> Path:
    """``out``, or the folder a symlink ``out`` points to (made absolute), so the link survives the save."""
    if out.is_symlink():
        return Path(os.path.realpath(out))
    return out


def _swap_into_place(new: Path, out: Path) -> None:
    """Put ``new`` at ``out``; the previous ``out`` (if any) is removed last, its ``versions/`` kept."""
    if not out.exists():
        new.rename(out)
        _fsync_dir(out.parent)
        _fault("swapped")
        _fault("versions-moved")
        _fault("done")
        return
    if use_rename_exchange and _rename_exchange(new, out):
        old = new  # after the exchange the temporary name holds the previous model
    else:
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        _fault("old-aside")
        try:
            new.rename(out)
        except BaseException:
            old.rename(out)  # put the previous model back
            raise
    _fsync_dir(out.parent)
    _fault("swapped")
    if (old / VERSIONS_DIR).is_dir() and not (out / VERSIONS_DIR).exists():
        (old / VERSIONS_DIR).rename(out / VERSIONS_DIR)
        _fsync_dir(out)
    _fault("versions-moved")
    shutil.rmtree(old, ignore_errors=True)
    _fault("done")


_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100


def _rename_exchange(a: Path, b: Path) -> bool:
    """Swap ``a`` and ``b`` in one atomic step (Linux ``renameat2``); False where that is not available."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):  # this filesystem cannot: the fallback
        return False
    raise OSError(err, os.strerror(err), str(b))


def _umask() -> int:
    """The process umask, read without setting it (Linux ``/proc``; else the usual 022)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    return 0o022


def _set_modes(tmp: Path, out: Path) -> None:
    """Give the new folder and files the previous model's modes, else what the umask gives."""
    mask = _umask()
    try:
        dir_mode = stat.S_IMODE(out.stat().st_mode)
    except OSError:
        dir_mode = 0o777 & ~mask
    os.chmod(tmp, dir_mode)
    for f in tmp.iterdir():
        try:
            mode = stat.S_IMODE((out / f.name).stat().st_mode)
        except OSError:
            mode = 0o666 & ~mask
        os.chmod(f, mode)


def _fsync_tree(folder: Path) -> None:
    for f in folder.iterdir():
        if f.is_file():
            fd = os.open(f, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    """fsync a folder so renames in it survive a power cut (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_HELD = threading.local()  # the parents whose save lock this thread holds (so a holder may call save_model)


@contextlib.contextmanager
def _save_lock(parent: Path) -> Iterator[bool]:
    """:data:`_THREAD_LOCK` + :func:`_folder_lock` on ``parent``, re-entrant within one thread."""
    held: dict[str, bool] = _HELD.__dict__.setdefault("parents", {})
    key = str(parent.resolve())
    if key in held:
        yield held[key]
        return
    # _THREAD_LOCK once per thread: a holder may save into a subfolder (versions/vN), whose parent differs
    with contextlib.nullcontext() if held else _THREAD_LOCK, _folder_lock(parent) as locked:
        held[key] = locked
        try:
            yield locked
        finally:
            del held[key]


@contextlib.contextmanager
def save_lock(out_dir: str | os.PathLike) -> Iterator[None]:
    """Hold the lock :func:`save_model` takes for ``out_dir``, so several steps (save, then record the
    version; make a version current) happen as one: another save into the folder waits. Re-entrant in
    one thread (``save_model`` may be called inside it); interrupted saves are recovered first.

    Raises:
        OutputError: the folder's parent cannot be created or opened.
    """
    out = _real_target(Path(out_dir))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create the folder: {e.strerror or e}", str(out.parent)) from e
    with _save_lock(out.parent) as locked:
        recover(out, locked=locked)
        yield


@contextlib.contextmanager
def _folder_lock(parent: Path) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``parent`` (saves into it wait for each other); yields whether it is held.

    Without fcntl (Windows) nothing is locked and False is yielded.
    """
    try:
        import fcntl
    except ImportError:  # Windows: no lock; recover() then only touches dead processes' folders
        yield False
        return
    try:
        fd = os.open(parent, os.O_RDONLY)
    except OSError as e:
        raise OutputError(f"cannot open the folder: {e.strerror or e}", str(parent)) from e
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:  # a filesystem without locks (some network mounts): go on unlocked
            yield False
            return
        yield True
    finally:
        os.close(fd)  # releases the lock


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: exists, another user's
        return True
    return True
