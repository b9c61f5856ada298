"""Cache files that are whole or absent, never half-written, and never pickles.

atomic_save writes into a temporary file in the target's folder and renames it
over the target (os.replace is atomic within one file system). A reader sees the
old file or the new one; a process killed mid-write (SIGKILL, Ctrl-C, power cut)
leaves at most a temporary file, never a partial file under the final name.

The format is torch.save's, read back with weights_only=True: tensors, numbers,
strings, and lists, tuples and dicts of them, but no arbitrary objects, so
loading a cache cannot run code. (No new dependency, unlike safetensors, and
unlike .npz it keeps nested dicts and strings without falling back to pickle.)
Save nn.Module weights as state_dicts, not modules.
"""
import os
import tempfile
import warnings
from pathlib import Path

import torch


class CacheWarning(UserWarning):
    """A cache could not be read or written; the work is done without it."""


def default_folder():
    """Where dl.sweep keeps its results by default: the data folder's sweeps/."""
    from .data import default_data_dir
    folder = default_data_dir()
    if folder is None:
        raise ValueError("there is no data folder for the sweep cache (HOME is empty "
                         "outside a checkout): pass cache=FOLDER, or cache=False")
    return folder / "sweeps"


def temporary_prefix(path):
    """Temporary files of `path` are hidden and carry the writer's process id."""
    return f".{path.name}.{os.getpid()}."


def remove_orphans(path):
    """Delete temporary files of `path` left by writers that were killed (their
    process no longer exists), so repeated kills do not fill the disk."""
    for orphan in path.parent.glob(f".{path.name}.*.tmp"):
        pid = orphan.name[len(path.name) + 2:].split(".")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            orphan.unlink(missing_ok=True)
        except OSError:
            pass  # alive, or someone else's process: leave its file alone


def write_atomically(path, write):
    """Call write(f) on a new temporary file beside `path`, then rename it to `path`.
    Errors propagate; the temporary file is removed whatever happens (Ctrl-C too)."""
    path = Path(path)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path),
                                         suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            os.fchmod(f.fileno(), 0o644)  # mkstemp's 0600 would hide it from other users
            write(f)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the name points to them
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def atomic_save(obj, path):
    """torch.save obj to path atomically, making its folder if needed. Return True,
    or warn (naming the path) and return False when it cannot be written: a cache
    is never worth a crash."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)  # the caller chose this folder
        write_atomically(path, lambda f: torch.save(obj, f))
    # torch.save reports some failures as RuntimeError, not OSError
    except (OSError, RuntimeError) as error:
        warnings.warn(f"could not write the cache {path} ({type(error).__name__}: {error}); "
                      "going on without it", CacheWarning, stacklevel=2)
        return False
    try:
        remove_orphans(Path(path))
    except OSError:
        pass
    return True


def load(path):
    """The object saved at path; None when there is no file, and None with a
    warning that names the file when it is unreadable (truncated, garbage, not
    ours), so that the caller rebuilds it."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, EOFError, UnpicklingError ...
        reason = str(error).strip().splitlines()[0] if str(error).strip() else ""
        warnings.warn(f"the cache {path} is unreadable ({type(error).__name__}: {reason}); "
                      "it will be rebuilt", CacheWarning, stacklevel=2)
        return None
