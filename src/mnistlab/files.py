"""Writing files so that a crash never leaves a half-written one: temp file in the same folder, then rename.

``atomic_write(path, write)`` is the one mechanism; ``write_text`` and ``write_json`` are its two
common uses. Every file mnistlab writes (weights, checkpoints, run records, exported CSV) goes
through it.
"""

import errno
import json
import math
import os
import secrets
from pathlib import Path


def missing_folders(path) -> list[Path]:
    """The folders above ``path`` that do not exist yet, outermost first (what writing it will create)."""
    return [p for p in reversed(Path(path).parents) if not p.exists()]


def atomic_write(path, write):
    """Call ``write(temp_path)`` then rename the temp file onto ``path``; clean up on failure.

    An OSError names ``path``, never the temporary file, and a folder at ``path`` is refused.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder; give a file name", str(path))
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created like open() would (mode 0666 less the umask), not 0600 as tempfile.mkstemp does;
        # the mode is put back after writing, as safetensors' save_file also leaves 0600.
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    except OSError as e:
        raise _naming(e, path) from None
    try:
        mode = os.stat(tmp).st_mode & 0o777
        write(tmp)
        with open(tmp, "rb") as f:  # on disk before the rename, so not even a power cut leaves half a file
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise _naming(e, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _naming(error: OSError, path: Path) -> OSError:
    """``error`` as the user's path would have raised it: the temporary file's name is ours, not theirs."""
    if error.filename is None or str(error.filename) == str(path):
        return error
    if Path(str(error.filename)).name.startswith(f".{path.name}."):
        return type(error)(error.errno, error.strerror, str(path))
    return error  # about another file (a parent folder that cannot be made): keep its name


def finite_or_none(obj):
    """NaN and infinity are not JSON: write them as null (e.g. validation loss with no validation set)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    return obj


def write_json(path, obj):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(finite_or_none(obj), f, indent=2, allow_nan=False)
            f.write("\n")
    atomic_write(path, write)


def write_text(path, text):
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _temp_owner(name):
    """The process id in an ``atomic_write`` temp file's name (``.NAME.PID.HEX.tmp``), else None."""
    parts = name.split(".")
    if name.startswith(".") and name.endswith(".tmp") and len(parts) >= 5 and parts[-3].isdigit():
        return int(parts[-3])
    return None


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(folder):
    """Delete temp files that a killed ``atomic_write`` left in ``folder`` (their process is gone);
    return their names. Files of a process still running are left alone."""
    removed = []
    for path in Path(folder).glob(".*.tmp"):
        pid = _temp_owner(path.name)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            path.unlink(missing_ok=True)
            removed.append(path.name)
    return sorted(removed)
