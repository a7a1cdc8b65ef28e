"""The converted-weights cache: a preset's weights converted to our model once
(:func:`converted_weights`), as a ``.weights.h5`` beside the verified download.

The cache is keyed by the pinned source: a converted file is named after the source file, the
preset and the first 16 hex digits of the source's sha256, and carries a manifest,
``<file>.manifest.json``: the source's sha256, the converted file's sha256, the package
version and a signature (HMAC-SHA256 of those fields) made with this user's key,
``$XDG_CONFIG_HOME/deeplab_keras/converted.key`` (``~/.config/...``; created on first use,
readable by this user only, kept outside the cache folder). It is checked before every use; a
missing or mismatching manifest (tampered or truncated file, other source, other converter
version, or a file and manifest that this user's conversions did not write: planted in a
shared cache or copied from another machine) converts again from the verified source. A cache
folder that cannot be written gets a temporary conversion outside it (deleted at exit) instead
of a raw errno; a key that cannot be stored is kept for this process only.
"""
import atexit
import hashlib
import hmac
import os
import secrets
import shutil
import sys
import tempfile

from deeplab_keras import download
from deeplab_keras.hub import zoo
from deeplab_keras.utils.io import atomic_path, write_json
from deeplab_keras.version import __version__

MANIFEST_SUFFIX = ".manifest.json"


def manifest_path(target):
    return os.fspath(target) + MANIFEST_SUFFIX


KEY_FILE = os.path.join("deeplab_keras", "converted.key")
_process_key = []  # the key of this process when none can be stored


def key_path():
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, KEY_FILE)


def signing_key():
    """This user's key for signing converted-weights manifests (created on first use, mode
    0600); a key that cannot be read or stored is made for this process only (conversions are
    then reused within the process, not across runs)."""
    path = key_path()
    try:
        with open(path, "rb") as f:
            key = f.read()
        if len(key) >= 32:
            return key
    except OSError:
        pass
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        key = secrets.token_bytes(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key)
        return key
    except FileExistsError:  # another process made it meanwhile
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        if not _process_key:
            _process_key.append(secrets.token_bytes(32))
        return _process_key[0]


def signature(source_sha256, converted_sha256, package_version):
    message = f"{source_sha256}\n{converted_sha256}\n{package_version}".encode()
    return hmac.new(signing_key(), message, hashlib.sha256).hexdigest()


def check_manifest(target, source_sha256):
    """``(True, None)`` if ``target`` matches its manifest and ``source_sha256``, else
    ``(False, reason)``."""
    import json

    if not os.path.isfile(target):
        return False, "does not exist"
    try:
        with open(manifest_path(target)) as f:
            manifest = json.load(f)
    except (OSError, ValueError):
        return False, "has no readable manifest"
    if not isinstance(manifest, dict):
        return False, "has a corrupt manifest"
    if manifest.get("source_sha256") != source_sha256:
        return False, (f"was converted from another source (sha256 "
                       f"{manifest.get('source_sha256')}, now {source_sha256})")
    if manifest.get("package_version") != __version__:
        return False, (f"was converted by deeplab-keras {manifest.get('package_version')} "
                       f"(this is {__version__})")
    actual = download.file_hash(target)
    if manifest.get("converted_sha256") != actual:
        return False, (f"changed after conversion (sha256 {actual}, manifest "
                       f"{manifest.get('converted_sha256')})")
    expected = signature(source_sha256, actual, __version__)
    if not hmac.compare_digest(str(manifest.get("signature", "")), expected):
        return False, ("was not converted here: its manifest is not signed with this user's key "
                       f"({key_path()}); a file planted in the cache or copied from elsewhere")
    return True, None


def _writable(folder):
    try:
        probe = os.path.join(folder, f".write-test.{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.remove(probe)
        return True
    except OSError:
        return False


def convert_cached(target, source, convert, source_sha256=None):
    """Path of ``target``, the conversion of the verified file ``source``: reused when its
    manifest checks out, else made by ``convert(path)`` (which writes the converted file to
    ``path``) atomically, under a file lock, with a new manifest."""
    target = os.fspath(target)
    source_sha256 = source_sha256 or download.file_hash(source)
    ok, reason = check_manifest(target, source_sha256)
    if ok:
        return target
    folder = os.path.dirname(os.path.abspath(target))
    if not _writable(folder):
        return _convert_outside_cache(target, convert, folder)
    with download.file_lock(target):
        ok, reason = check_manifest(target, source_sha256)  # done by another process meanwhile?
        if ok:
            return target
        if os.path.exists(target):
            print(f"deeplab-keras: converted weights {target} {reason}; converting again from "
                  f"the verified source {source}", file=sys.stderr)
        with atomic_path(target, suffix=".weights.h5") as tmp:
            convert(tmp)
        converted_sha256 = download.file_hash(target)
        write_json(manifest_path(target), {
            "source": os.path.basename(source), "source_sha256": source_sha256,
            "converted_sha256": converted_sha256, "package_version": __version__,
            "signature": signature(source_sha256, converted_sha256, __version__)})
    return target


def _convert_outside_cache(target, convert, folder):
    tmpdir = tempfile.mkdtemp(prefix="deeplab_keras_converted_")
    atexit.register(shutil.rmtree, tmpdir, ignore_errors=True)
    path = os.path.join(tmpdir, os.path.basename(target))
    print(f"deeplab-keras: the cache folder {folder} is not writable, so the converted weights "
          f"are not cached: converting into {path} for this run only (set "
          f"{download.CACHE_ENV} to a writable folder to keep them)", file=sys.stderr)
    convert(path)
    return path


def converted_weights(name, fmt=None, allow_unpinned=False, progress=True):
    """Path of preset ``name``'s weights converted to our model (a ``.weights.h5`` cached next to
    the source file); converts on first use. Returns ``(path, preset)``."""
    preset = zoo.get_preset(name)
    source, entry = zoo.fetch_weights(name, fmt, allow_unpinned, progress)
    if entry["format"] == "keras_weights_h5":
        return source, preset
    cache_root = download.cache_dir()
    folder = os.path.dirname(source) if os.path.dirname(os.path.abspath(source)).startswith(
        os.path.abspath(cache_root)) else cache_root
    # keyed by the pinned source (else the downloaded file's own hash): another source never
    # finds this conversion
    source_sha256 = entry.get("sha256") or download.file_hash(source)
    target = os.path.join(folder, f"{os.path.basename(source)}.{name}.{source_sha256[:16]}"
                                  ".weights.h5")

    def convert(path):
        from deeplab_keras.importers.formats import import_weights
        model = zoo.build_preset_model(preset, num_classes=zoo.conversion_classes(preset))
        import_weights(model, source, entry["format"], backbone_only=preset.get("backbone_only", False))
        model.save_weights(path)

    # issue 11: reused only if its manifest (source + converted sha256, version) checks out
    return convert_cached(target, source, convert, source_sha256), preset
