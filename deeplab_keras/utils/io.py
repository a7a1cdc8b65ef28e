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
    tmp = os.path.join(folder, f".{os.path.basename(path)}.{TEMP_TAG}{os.getpid()}-"
                               f"{secrets.token_hex(4)}.tmp{suffix}")
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


#: folders never replaced, not even with ``overwrite`` (and those above them)
SYSTEM_FOLDERS = ("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/media",
                  "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp",
                  "/usr", "/var")
#: folders whose contents belong to the operating system: nothing in them is replaced
SYSTEM_TREES = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/proc", "/sbin",
                "/sys", "/usr")


def read_json_dict(path):
    """The JSON object in the file at ``path``, or None: missing, a link, unreadable, not JSON,
    or JSON that is not an object (how a reader tells a file of ours from anything else)."""
    if os.path.islink(path) or not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _inside(path, folder):
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _protected(path):
    """Paths never replaced, not even with ``overwrite``: the file system root, the home folder,
    the working directory and every folder above it, the system folders
    (:data:`SYSTEM_FOLDERS`) and anything inside :data:`SYSTEM_TREES`."""
    real = os.path.realpath(path)
    cwd = os.path.realpath(os.getcwd())
    home = os.path.realpath(os.path.expanduser("~"))
    if os.name == "posix":
        for folder in SYSTEM_TREES:
            if any(_inside(real, f) for f in {folder, os.path.realpath(folder)}):
                return True
        if real in SYSTEM_FOLDERS or real in {os.path.realpath(f) for f in SYSTEM_FOLDERS}:
            return True
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
    if _protected(path):  # a link too: /bin -> /usr/bin
        raise OutputExistsError(f"{what} {path!r} is the working, home, root or a system folder "
                                "(or a folder above the working folder, or inside a system "
                                "folder); it is never replaced, not even with --overwrite. Name a "
                                "new folder or file for the output.")
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
        aside = os.path.join(folder, f".{base}.{TEMP_TAG}old{os.getpid()}-{secrets.token_hex(4)}.tmp")
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


#: in every temporary name we write (``.NAME.deeplab-keras-PID-HEX.tmp``, ``...-oldPID-...``,
#: exports' ``.NAME.deeplab-keras-PID.tmp.EXT``): how a later run knows a leftover is ours
TEMP_TAG = "deeplab-keras-"


def stale_temps(path):
    """Temporary files that dead processes left beside ``path``: hidden names carrying
    :data:`TEMP_TAG` and a PID (and the older ``.NAME.tmpPID[.ext]``, ``.NAME.PID-HEX.tmp[.ext]``
    and ``.NAME.oldPID-HEX.tmp`` names), whose PID is no longer running."""
    import re

    path = os.fspath(path)
    folder, base = os.path.split(os.path.abspath(path))
    if not base or not os.path.isdir(folder):
        return []
    pattern = re.compile(r"^\." + re.escape(base) + r"\.(?:" + re.escape(TEMP_TAG)
                         + r"(?:old)?(\d+)(?:-[0-9a-f]+)?\.tmp|tmp(\d+)|(?:old)?(\d+)-[0-9a-f]+\.tmp)")
    return _dead(folder, pattern)


def stale_temps_in(folder):
    """Every temporary file of ours (:data:`TEMP_TAG` names) in ``folder`` whose process is dead,
    whatever output it was for (an export killed late, then never run again to that name)."""
    import re

    pattern = re.compile(r"^\..+\." + re.escape(TEMP_TAG) + r"(?:old)?(\d+)(?:-[0-9a-f]+)?\.tmp")
    return _dead(folder, pattern) if os.path.isdir(folder) else []


def _dead(folder, pattern):
    found = []
    for name in os.listdir(folder):
        m = pattern.match(name)
        if m and not _pid_alive(int(next(g for g in m.groups() if g))):
            found.append(os.path.join(folder, name))
    return found


def clean_stale_temps(path, whole_folder=False):
    """Delete :func:`stale_temps` of ``path`` (with ``whole_folder``: every stale temp of ours
    in its folder, :func:`stale_temps_in`), best effort; returns the paths removed."""
    import shutil

    removed = []
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    temps = set(stale_temps(path)) | (set(stale_temps_in(folder)) if whole_folder else set())
    for tmp in sorted(temps):
        try:
            if os.path.isdir(tmp) and not os.path.islink(tmp):
                shutil.rmtree(tmp)
            else:
                os.remove(tmp)
            removed.append(tmp)
        except OSError:
            pass
    return removed


# --- One writer policy (issue 27): every output of every command -----------------------------
# Never replace a file we did not write (ours is recognised by what we wrote into it: a PNG's
# ``Software`` text entry, a video's ``comment`` tag, our JSON keys), never write onto an input,
# write atomically (above), and refuse up front, in one line naming the file and --overwrite.

#: what the ``Software`` entry of every PNG we write starts with (``deeplab-keras predict``,
#: ``deeplab-keras evaluate``): how a later run knows a picture is its own
SOFTWARE_PREFIX = "deeplab-keras"


def png_info(software):
    """A PIL ``PngInfo`` carrying ``Software: software`` (pass as ``pnginfo=``)."""
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Software", software)
    return info


def is_our_png(path, software=SOFTWARE_PREFIX):
    """Is ``path`` a PNG whose ``Software`` entry starts with ``software``?"""
    from PIL import Image

    with Image.open(path) as im:
        return im.format == "PNG" and str(getattr(im, "text", {}).get("Software", "")
                                          ).startswith(software)


def same_file(a, b):
    """Do ``a`` and ``b`` name one file (the same path after links, or a hard link)?"""
    a, b = os.fspath(a), os.fspath(b)
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def check_not_input(path, inputs, flag="--output"):
    """ValueError if writing ``path`` would replace one of ``inputs`` (compared after
    resolving links, and by inode for hard links)."""
    for source in inputs:
        if same_file(path, source):
            raise ValueError(f"{flag} {os.fspath(path)!r} is an input of this run "
                             f"({os.fspath(source)}); an output never replaces an input: "
                             "choose another name")


def check_output_file(path, ours, *, inputs=(), overwrite=False, flag="--output",
                      what="output"):
    """The policy for one output file, checked before any work (and again before writing):
    not a folder, not an input, and, when it exists, something ``ours(path)`` recognises as
    written by us, or ``overwrite``. Raises ValueError / :class:`OutputExistsError` in one line
    naming the file (and ``--overwrite``)."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise ValueError(f"{flag} {path!r} is a folder; name a file inside it")
    check_not_input(path, inputs, flag)
    check_owned([path], ours, overwrite=overwrite, what=what)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(folder) and not os.access(folder, os.W_OK):
        raise ValueError(f"{flag} {path!r}: cannot write in {folder} (read-only); choose "
                         "another folder")
