"""Atomic file writes: write beside the destination, then ``os.replace``, so a killed process
never leaves a half-written file under the final name."""
import contextlib
import json
import os
import secrets


@contextlib.contextmanager
def atomic_path(path, suffix=""):
    """Yield a temporary path in ``path``'s folder; it replaces ``path`` when the block succeeds
    and is deleted when it fails. ``suffix`` keeps an extension a writer insists on
    (``".weights.h5"`` for Keras, ``".png"`` for PIL)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    clean_stale_temps(path)  # left by killed runs
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}-{secrets.token_hex(4)}.tmp{suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_text(path, text):
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write(text)
    return path


def write_json(path, obj, **kwargs):
    """``json.dump`` (indent 1 unless given) to ``path`` atomically; returns ``path``."""
    kwargs.setdefault("indent", 1)
    return write_text(path, json.dumps(obj, **kwargs) + "\n")


# --- Refusing to replace what we did not write; cleaning up after killed runs (issue 11) -------

class OutputExistsError(FileExistsError):
    """An output path holds something we did not write (and ``overwrite`` was not given)."""


def _protected(path):
    """Folders never replaced, not even with ``overwrite``: the file system root, the home
    folder, the working directory and every folder above it."""
    real = os.path.realpath(path)
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    return (real in (os.path.realpath(os.sep), home)
            or cwd == real or cwd.startswith(real.rstrip(os.sep) + os.sep))


def check_replaceable(path, *, overwrite=False, ours=None, what="output"):
    """Raise :class:`OutputExistsError` unless ``path`` may be replaced: it does not exist, is an
    empty folder, or ``ours(path)`` says it is something we wrote earlier (a previous export), or
    ``overwrite`` is true. The root, home and working folders (and their parents) are never
    replaceable. Also removes temporary files that killed runs left beside ``path``."""
    path = os.fspath(path)
    clean_stale_temps(path)
    if not os.path.lexists(path):
        return
    if os.path.isdir(path) and not os.path.islink(path) and _protected(path):
        raise OutputExistsError(f"{what} {path!r} is the working, home or root folder (or a folder "
                                "above the working folder); it is never replaced. Name a new "
                                "folder or file for the output.")
    if os.path.isdir(path) and not os.path.islink(path) and not os.listdir(path):
        return
    if ours is not None:
        try:
            if ours(path):
                return
        except Exception:  # unreadable or foreign content: not ours
            pass
    if overwrite:
        return
    kind = "folder" if os.path.isdir(path) else "file"
    raise OutputExistsError(f"{what} {path!r} is an existing {kind} that is not a previous "
                            "deeplab-keras export; refusing to replace it (nothing was changed). "
                            "Choose a new path, empty it, or pass --overwrite (API: "
                            "overwrite=True) to replace it.")


def check_owned(paths, ours, *, overwrite=False, flag="--overwrite", what="file"):
    """Raise :class:`OutputExistsError` naming the first of ``paths`` that exists and that
    ``ours(path)`` does not recognise as something we wrote (files a command writes beside its
    main output: reports, label files, pictures), unless ``overwrite``. Call it before any work
    and again just before writing (the folder may have changed)."""
    if overwrite:
        return
    for path in paths:
        path = os.fspath(path)
        if not os.path.lexists(path):
            continue
        try:
            mine = not os.path.islink(path) and os.path.isfile(path) and ours(path)
        except Exception:  # unreadable or foreign content: not ours
            mine = False
        if not mine:
            raise OutputExistsError(f"{what} {path!r} already exists and was not written by "
                                    f"deeplab-keras; refusing to replace it (nothing was changed). "
                                    f"Move it, choose another output name, or pass {flag} to "
                                    "replace it.")


def replace_path(tmp, path):
    """Move ``tmp`` (file or folder) to ``path``. An existing folder at ``path`` is renamed aside
    first and deleted only after the move succeeded (put back if it failed)."""
    import shutil

    path = os.fspath(path)
    if not os.path.isdir(tmp) and os.path.isdir(path) and not os.path.islink(path):
        raise IsADirectoryError(f"{path} is a folder; a file cannot replace it (name a file path)")
    if os.path.isdir(tmp) and os.path.isdir(path) and not os.path.islink(path):
        folder, base = os.path.split(os.path.abspath(path))
        aside = os.path.join(folder, f".{base}.old{os.getpid()}-{secrets.token_hex(4)}.tmp")
        os.replace(path, aside)
        try:
            os.replace(tmp, path)
        except BaseException:
            os.replace(aside, path)
            raise
        shutil.rmtree(aside, ignore_errors=True)
        return path
    os.replace(tmp, path)
    return path


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists (another user's) or cannot tell: keep its files
    return True


def stale_temps(path):
    """Temporary files that dead processes left beside ``path``: the hidden
    ``.NAME.tmpPID[.ext]`` (exports), ``.NAME.PID-HEX.tmp[.ext]`` (atomic writes) and
    ``.NAME.oldPID-HEX.tmp`` (replaced folders) names, whose PID is no longer running."""
    import re

    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    if not base or not os.path.isdir(folder):
        return []
    pattern = re.compile(r"^\." + re.escape(base) + r"\.(?:tmp(\d+)|(?:old)?(\d+)-[0-9a-f]+\.tmp)")
    found = []
    for name in os.listdir(folder):
        m = pattern.match(name)
        if m and not _pid_alive(int(m.group(1) or m.group(2))):
            found.append(os.path.join(folder, name))
    return found


def clean_stale_temps(path):
    """Delete :func:`stale_temps` of ``path`` (best effort); returns the paths removed."""
    import shutil

    removed = []
    for tmp in stale_temps(path):
        try:
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                shutil.rmtree(tmp)
            else:
                os.remove(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed
