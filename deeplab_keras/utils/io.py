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
