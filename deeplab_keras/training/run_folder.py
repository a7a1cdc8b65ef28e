"""A training run's ``output_dir`` is ours (issue 19): it carries a marker file we wrote,
training refuses a non-empty folder without it, and holds a lock so a second run into the same
folder refuses at once, before it writes anything. The resume state of
``keras.callbacks.BackupAndRestore`` lives in :data:`BACKUP`, a name no user would pick: it is
the only folder a run removes (Keras deletes it when training ends)."""
import contextlib
import json
import os
import sys
import time

from deeplab_keras.utils import io

#: the marker file: present in every run folder we created
MARKER = ".deeplab-keras-run"
#: the lock file held while a run writes into the folder
LOCK = ".deeplab-keras-run.lock"
#: the BackupAndRestore folder (resume state of an interrupted run)
BACKUP = ".deeplab-keras-backup"


class RunFolderError(ValueError):
    """``output_dir`` is not ours, or another run is writing into it."""


def backup_dir(output_dir):
    return os.path.join(output_dir, BACKUP)


def is_run_folder(output_dir):
    """Is ``output_dir`` a run folder we created (it carries :data:`MARKER`)?"""
    marker = os.path.join(output_dir, MARKER)
    if not os.path.isfile(marker) or os.path.islink(marker):
        return False
    try:
        with open(marker) as f:
            return json.load(f).get("written_by") == "deeplab-keras train"
    except (OSError, ValueError, AttributeError):
        return False


#: keys of the config.json every earlier version of ``train`` wrote (a run folder from before
#: the marker existed is recognised by it)
LEGACY_CONFIG_KEYS = {"output_dir", "class_weights_used", "frozen_bn", "frozen_bn_layers"}
#: the BackupAndRestore folder of those runs
LEGACY_BACKUP = "backup"


def is_legacy_run_folder(output_dir):
    """A run folder an earlier version wrote: its ``config.json`` is ours (our keys, this
    ``output_dir``)."""
    try:
        with open(os.path.join(output_dir, "config.json")) as f:
            config = json.load(f)
    except (OSError, ValueError):
        return False
    return (isinstance(config, dict) and LEGACY_CONFIG_KEYS <= set(config)
            and os.path.realpath(str(config["output_dir"])) == os.path.realpath(output_dir))


def _adopt_legacy(output_dir):
    """Mark a run folder of an earlier version; its Keras backup (``backup/`` holding
    ``training_metadata.json``) becomes :data:`BACKUP` so the run resumes."""
    old = os.path.join(output_dir, LEGACY_BACKUP)
    if (os.path.isfile(os.path.join(old, "training_metadata.json"))
            and not os.path.exists(backup_dir(output_dir))):
        os.replace(old, backup_dir(output_dir))
        print(f"deeplab-keras: {old} (the backup of an earlier version) is now "
              f"{backup_dir(output_dir)}", file=sys.stderr)


def resuming(output_dir):
    """Will a run into ``output_dir`` resume an interrupted one (our backup is there)?"""
    backup = backup_dir(output_dir)
    if is_legacy_run_folder(output_dir) and not is_run_folder(output_dir):
        backup = os.path.join(output_dir, LEGACY_BACKUP)
        return os.path.isfile(os.path.join(backup, "training_metadata.json"))
    return is_run_folder(output_dir) and os.path.isdir(backup) and bool(os.listdir(backup))


def check(output_dir):
    """Raise :class:`RunFolderError` unless ``output_dir`` is missing, empty or a run of ours."""
    if os.path.lexists(output_dir) and not os.path.isdir(output_dir):
        raise RunFolderError(f"output_dir {output_dir!r} is a file, not a folder; name a new "
                             "folder for the run (--output-dir)")
    if not os.path.isdir(output_dir) or is_run_folder(output_dir) or is_legacy_run_folder(output_dir):
        return
    others = sorted(set(os.listdir(output_dir)) - {LOCK})
    if others:
        shown = ", ".join(others[:3]) + (", ..." if len(others) > 3 else "")
        raise RunFolderError(f"output_dir {output_dir!r} is not empty ({shown}) and is not a "
                             f"deeplab-keras run folder (no {MARKER} file); refusing to write "
                             "into it (nothing was changed). Choose a new or empty --output-dir.")


@contextlib.contextmanager
def claim(output_dir, is_chief=True):
    """Hold ``output_dir`` for one run: check it is ours (or new), lock it, mark it. A second
    run into the same folder raises :class:`RunFolderError` at once. Workers other than the
    chief of a multi-worker run write nothing there and take no lock."""
    import filelock

    if not is_chief:  # the chief checks, locks and marks (workers start in any order)
        os.makedirs(output_dir, exist_ok=True)
        yield
        return
    check(output_dir)
    os.makedirs(output_dir, exist_ok=True)
    lock = filelock.FileLock(os.path.join(output_dir, LOCK))
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        raise RunFolderError(f"another training run is writing into {output_dir!r} (it holds "
                             f"{LOCK}); nothing was changed. Wait for it to finish or choose "
                             "another --output-dir.") from None
    try:
        check(output_dir)  # again, under the lock: it may have changed meanwhile
        if not is_run_folder(output_dir):
            if is_legacy_run_folder(output_dir):
                _adopt_legacy(output_dir)
            io.write_json(os.path.join(output_dir, MARKER),
                          {"written_by": "deeplab-keras train", "created": time.time()})
        yield
    finally:
        lock.release()
