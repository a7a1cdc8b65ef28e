"""Verified, cached, resumable downloads (the ideas of ``keras.utils.get_file``, made strict).

* Cache: ``~/.keras/deeplab_keras`` or ``$DEEPLAB_KERAS_CACHE``.
* Mirror: with ``$DEEPLAB_KERAS_MIRROR`` set, a file is fetched as ``<mirror>/<file name>`` and
  still checked against the catalogue's checksum.
* A file is written to ``<name>.part``, verified (sha256, or the md5 keras.applications pins), and
  only then moved into place with ``os.replace``. A failed checksum removes the ``.part``.
* Interrupted transfers are retried, resuming with an HTTP ``Range`` request when the server
  honours it (restarting from zero when it does not).
* Files without a pinned checksum are only fetched with ``allow_unpinned=True``; their computed
  sha256 is printed so it can be pinned.
* Every download ends (issue 19): an overall deadline (``$DEEPLAB_KERAS_DOWNLOAD_DEADLINE``
  seconds, default 3600), a minimum transfer rate (``$DEEPLAB_KERAS_DOWNLOAD_MIN_RATE`` bytes/s
  over :data:`deeplab_keras.transfer.RATE_WINDOW` seconds, default 1024), and a size bound: a pinned size exactly, else
  ``$DEEPLAB_KERAS_DOWNLOAD_MAX_BYTES`` (default 4 GiB). A failed download leaves no partial
  file (a full disk included).
"""
import errno
import hashlib
import http.client
import json
import os
import socket
import sys
import tempfile
import time
import urllib.error
import urllib.parse

from deeplab_keras.filetypes import ChecksumError, FormatError, check_format  # noqa: F401
from deeplab_keras.transfer import (DEADLINE, DEADLINE_ENV, MAX_BYTES, MAX_BYTES_ENV,  # noqa: F401
                                    MIN_RATE, MIN_RATE_ENV, Budget, DownloadError, LimitError,
                                    download as _download, limits)

CACHE_ENV = "DEEPLAB_KERAS_CACHE"
MIRROR_ENV = "DEEPLAB_KERAS_MIRROR"
LOCK_TIMEOUT = 3600.0  # seconds a process waits for another one downloading the same file
RECORD_SUFFIX = ".record.json"  # sha256 recorded at an unpinned file's first download


class CacheError(OSError):
    """The cache folder cannot be created or written (read-only file system, permissions)."""


def cache_dir():
    path = os.path.expanduser(os.environ.get(CACHE_ENV) or os.path.join("~", ".keras", "deeplab_keras"))
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as err:
        raise CacheError(f"cannot create the download cache folder {path} "
                         f"({err.strerror or err}); set {CACHE_ENV} to a writable folder") from None
    return path


def file_hash(path, algorithm="sha256"):
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path, sha256=None, md5=None, size=None):
    """Raise :class:`ChecksumError` unless ``path`` matches the given pins."""
    if size is not None and os.path.getsize(path) != size:
        raise ChecksumError(f"{path}: size {os.path.getsize(path)} bytes, expected {size} "
                            "(truncated or wrong file)")
    for algorithm, expected in (("sha256", sha256), ("md5", md5)):
        if expected:
            actual = file_hash(path, algorithm)
            if actual != expected.lower():
                raise ChecksumError(f"{path}: {algorithm} {actual} does not match the expected "
                                    f"{expected} (tampered, truncated or wrong file)")


def source_url(url, file):
    """The URL actually used: ``$DEEPLAB_KERAS_MIRROR/<file>`` when a mirror is set."""
    mirror = os.environ.get(MIRROR_ENV)
    if mirror:
        parsed = urllib.parse.urlparse(mirror)
        if not (parsed.scheme in ("http", "https") and parsed.netloc or parsed.scheme == "file"):
            raise ValueError(f"{MIRROR_ENV}={mirror!r} is not a URL: set it to the folder URL "
                             "of a server holding the files (e.g. http://host/deeplab_keras/ "
                             "or file:///path/), or unset it")
        return mirror.rstrip("/") + "/" + file
    return url


def fetch(url, file, *, sha256=None, md5=None, size=None, allow_unpinned=False, retries=2,
          progress=True, timeout=60, subdir=None, lock_timeout=None, deadline=None,
          min_rate=None, max_bytes=None):
    """Return the local path of ``file`` (in the cache), downloading it from ``url`` if needed.

    Pinned files (``sha256``/``md5``) are cached as ``<cache>/<file>`` and verified on every use.
    Unpinned ones (``allow_unpinned=True``) are cached under ``<cache>/unpinned/<hash of the
    URL>/<file>``, their format checked before they are cached (a ``.tflite`` must parse, a
    tarball must open, an HTML error page is refused), their sha256 recorded at the first
    download and checked on every reuse. Concurrent calls (threads or processes) for one file
    wait on a file lock for a single download.

    Raises :class:`ChecksumError` for a file that does not match its pins or its format (nothing
    is kept), :class:`DownloadError` when it cannot be fetched (the message names the URL and
    where to put the file by hand), :class:`CacheError` for a cache folder that cannot be
    written, ValueError for an unpinned file without ``allow_unpinned``.

    ``deadline`` (seconds for the whole fetch), ``min_rate`` (bytes/s over each
    :data:`deeplab_keras.transfer.RATE_WINDOW`) and ``max_bytes`` (bound of a file without a pinned ``size``) default
    to their environment variables (see the module's doc); breaking one raises
    :class:`LimitError` and keeps nothing.
    """
    bounds = limits(deadline, min_rate, max_bytes)
    folder = os.path.join(cache_dir(), subdir) if subdir else cache_dir()
    pinned = bool(sha256 or md5)
    real_url = source_url(url, file)
    if not pinned:  # never shared between URLs: key by the full URL actually used
        folder = os.path.join(folder, "unpinned", url_key(real_url or file))
    dest = os.path.join(folder, file)
    if not pinned and not allow_unpinned:
        raise ValueError(f"{file} has no pinned checksum in the catalogue, so it cannot be verified. "
                         "Pass allow_unpinned=True (CLI: --allow-unpinned) to use it anyway; its "
                         f"sha256 will be printed. Source: {url}; cache path: {dest}")
    if os.path.exists(dest) and _cached_ok(dest, pinned, sha256, md5, size, real_url):
        return dest  # fast path: no lock needed to read a verified, atomically written file
    if not real_url:
        raise DownloadError(f"{file} has no download URL; put the file at {dest}")
    make_writable_folder(folder, dest, sha256)
    with file_lock(dest, lock_timeout):
        if os.path.exists(dest):  # another process may have finished it while we waited
            if _cached_ok(dest, pinned, sha256, md5, size, real_url, quiet=True):
                return dest
            os.remove(dest)
        return _fetch_locked(real_url, file, dest, pinned, sha256, md5, size, retries, progress,
                             timeout, bounds)


def _fetch_locked(real_url, file, dest, pinned, sha256, md5, size, retries, progress, timeout,
                  bounds):
    part = _adopt_part(dest)  # our own temp name; a killed run's part is resumed
    error, ok = None, False
    deadline, min_rate, max_bytes = bounds
    budget = Budget(real_url, time.monotonic() + deadline, min_rate,
                    size if size is not None else max_bytes, size is not None,
                    fix=f"set {MIRROR_ENV} to a server holding the file, or put it at {dest} by hand")
    try:
        for attempt in range(retries + 1):
            try:
                resumed = _download(real_url, part, timeout, progress, budget)
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError,
                    socket.timeout, TimeoutError) as err:
                error = err
                if isinstance(err, urllib.error.HTTPError) and err.code in (403, 404, 410):
                    break  # retrying cannot help
                if attempt < retries:
                    print(f"deeplab-keras: download of {real_url} interrupted ({err}); retrying "
                          f"({attempt + 1}/{retries})", file=sys.stderr)
                    time.sleep(min(2.0 ** attempt, 5.0) * 0.5)
                continue
            try:
                verify(part, sha256, md5, size)
                if not pinned:
                    check_format(part, file)
            except ChecksumError as err:
                os.remove(part)
                if resumed and attempt < retries:
                    error = err  # the kept part may have been stale: start over once more
                    continue
                raise type(err)(f"download of {real_url} refused: {err}. Nothing was kept in "
                                f"the cache ({dest}).") from None
            digest = file_hash(part)
            os.replace(part, dest)
            ok = True
            if not pinned:
                from deeplab_keras.utils.io import write_json
                write_json(dest + RECORD_SUFFIX, {"url": real_url, "sha256": digest,
                                                  "size": os.path.getsize(dest)})
                _report_unpinned(dest, digest)
            return dest
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise CacheError(f"download of {real_url} stopped: no space left for {dest} "
                             f"({err.strerror or err}); the partial file was removed. Free some "
                             f"space or set {CACHE_ENV} to a folder on a larger disk.") from None
        raise
    finally:
        if not ok:  # a failed download leaves nothing behind (a killed one is resumed)
            _remove_quietly(part)
    raise DownloadError(
        f"could not download {real_url}: {error}. If this machine is offline, fetch the file "
        f"elsewhere and put it at {dest}" + (f" (sha256 {sha256})" if sha256 else "")
        + f", or set {MIRROR_ENV} to a server holding it.")


def url_key(url):
    """The cache folder name of an unpinned URL: 16 hex digits of its sha256."""
    return hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]


def _cached_ok(dest, pinned, sha256, md5, size, url, quiet=False):
    """Is the cached ``dest`` still what was verified (pinned: its pins; unpinned: the sha256
    recorded at its first download)?"""
    if pinned:
        try:
            verify(dest, sha256, md5, size)
            return True
        except ChecksumError as err:
            if not quiet:
                print(f"deeplab-keras: cached file is corrupt ({err}); downloading it again",
                      file=sys.stderr)
            return False
    try:
        with open(dest + RECORD_SUFFIX) as f:
            recorded = json.load(f)["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        if not quiet:
            print(f"deeplab-keras: cached unpinned file {dest} has no sha256 record; downloading "
                  "it again", file=sys.stderr)
        return False
    actual = file_hash(dest)
    if actual != recorded:
        if not quiet:
            print(f"deeplab-keras: cached unpinned file {dest} changed since it was downloaded "
                  f"(sha256 {actual}, recorded {recorded}); downloading it again", file=sys.stderr)
        return False
    _report_unpinned(dest, actual)
    return True


def make_writable_folder(folder, dest, sha256):
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, f".write-test.{os.getpid()}")
        with open(probe, "wb"):
            pass
        os.remove(probe)
    except OSError as err:
        raise CacheError(
            f"cannot write the download cache folder {folder} ({err.strerror or err}). Set "
            f"{CACHE_ENV} to a writable folder, or put the file at {dest} by hand"
            + (f" (sha256 {sha256})" if sha256 else "") + ".") from None


def file_lock(dest, timeout=None):
    """An inter-process lock (``filelock``) for writing ``dest`` (downloads, conversions). The lock file lives in the
    system temp folder (keyed by the destination's real path) so the cache only ever holds the
    files themselves."""
    import filelock

    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    folder = os.path.join(tempfile.gettempdir(), f"deeplab_keras_locks-{user}")
    os.makedirs(folder, exist_ok=True)
    key = hashlib.sha256(os.path.realpath(dest).encode("utf-8")).hexdigest()[:32]
    lock = filelock.FileLock(os.path.join(folder, key + ".lock"),
                             timeout=LOCK_TIMEOUT if timeout is None else timeout)

    class _Lock:
        def __enter__(self):
            try:
                lock.acquire(timeout=0)
                return self
            except filelock.Timeout:
                print(f"deeplab-keras: waiting for another process that is writing {dest} "
                      f"(up to {lock.timeout:.0f} s; lock {lock.lock_file})", file=sys.stderr)
            try:
                lock.acquire()
            except filelock.Timeout:
                raise DownloadError(f"another process has been downloading {dest} for more than "
                                    f"{lock.timeout:.0f} s (lock {lock.lock_file}); try again "
                                    "later") from None
            return self

        def __exit__(self, *exc):
            lock.release()

    return _Lock()


def _adopt_part(dest):
    """This process's temporary download file ``<dest>.part.<pid>``. Called with the download
    lock held: a part left by a killed run (any other ``<dest>.part*``) is taken over so that
    the download resumes where it stopped; the others are removed."""
    mine = f"{dest}.part.{os.getpid()}"
    folder, base = os.path.split(dest)
    leftovers = sorted((os.path.join(folder, n) for n in os.listdir(folder)
                        if n == base + ".part" or n.startswith(base + ".part.")),
                       key=lambda p: os.path.getsize(p) if os.path.exists(p) else 0)
    for path in leftovers[:-1]:
        _remove_quietly(path)
    if leftovers and leftovers[-1] != mine:
        try:
            os.replace(leftovers[-1], mine)
            print(f"deeplab-keras: resuming the interrupted download {leftovers[-1]}",
                  file=sys.stderr)
        except OSError:
            pass
    return mine


def _remove_quietly(path):
    try:
        os.remove(path)
    except OSError:
        pass


def _report_unpinned(path, digest=None):
    print(f"deeplab-keras: WARNING: {os.path.basename(path)} is not pinned in the catalogue; "
          f"unverified file {path} has sha256 {digest or file_hash(path)}", file=sys.stderr)
