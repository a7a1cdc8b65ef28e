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
"""
import hashlib
import http.client
import os
import shutil
import socket
import sys
import tarfile
import time
import urllib.error
import urllib.request

CACHE_ENV = "DEEPLAB_KERAS_CACHE"
MIRROR_ENV = "DEEPLAB_KERAS_MIRROR"
CHUNK = 1 << 16


class ChecksumError(ValueError):
    """A file's content does not match its pinned checksum."""


class DownloadError(OSError):
    """A file could not be fetched (offline, HTTP error, server cut the transfer)."""


def cache_dir():
    path = os.environ.get(CACHE_ENV) or os.path.join(os.path.expanduser("~"), ".keras", "deeplab_keras")
    os.makedirs(path, exist_ok=True)
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
        return mirror.rstrip("/") + "/" + file
    return url


def fetch(url, file, *, sha256=None, md5=None, size=None, allow_unpinned=False, retries=2,
          progress=True, timeout=60, subdir=None):
    """Return the local path of ``file`` (in the cache), downloading it from ``url`` if needed.

    Raises :class:`ChecksumError` for a file that does not match its pins (nothing is kept),
    :class:`DownloadError` when it cannot be fetched (the message names the URL and where to put
    the file by hand), ValueError for an unpinned file without ``allow_unpinned``.
    """
    folder = os.path.join(cache_dir(), subdir) if subdir else cache_dir()
    os.makedirs(folder, exist_ok=True)
    dest = os.path.join(folder, file)
    pinned = bool(sha256 or md5)
    if not pinned and not allow_unpinned:
        raise ValueError(f"{file} has no pinned checksum in the catalogue, so it cannot be verified. "
                         "Pass allow_unpinned=True (CLI: --allow-unpinned) to use it anyway; its "
                         f"sha256 will be printed. Source: {url}; cache path: {dest}")
    if os.path.exists(dest):
        if not pinned:
            _report_unpinned(dest)
            return dest
        try:
            verify(dest, sha256, md5, size)
            return dest
        except ChecksumError as err:
            print(f"deeplab-keras: cached file is corrupt ({err}); downloading it again",
                  file=sys.stderr)
            os.remove(dest)
    real_url = source_url(url, file)
    if not real_url:
        raise DownloadError(f"{file} has no download URL; put the file at {dest}")
    part = dest + ".part"
    error = None
    for attempt in range(retries + 1):
        try:
            resumed = _download(real_url, part, timeout, progress)
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout,
                TimeoutError) as err:
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
        except ChecksumError as err:
            os.remove(part)
            if resumed and attempt < retries:
                error = err  # the kept part may have been stale: start over once more
                continue
            raise ChecksumError(f"download of {real_url} refused: {err}. Nothing was kept in "
                                f"the cache ({dest}).") from None
        os.replace(part, dest)
        if not pinned:
            _report_unpinned(dest)
        return dest
    raise DownloadError(
        f"could not download {real_url}: {error}. If this machine is offline, fetch the file "
        f"elsewhere and put it at {dest}" + (f" (sha256 {sha256})" if sha256 else "")
        + f", or set {MIRROR_ENV} to a server holding it.")


def _report_unpinned(path):
    print(f"deeplab-keras: WARNING: {os.path.basename(path)} is not pinned in the catalogue; "
          f"unverified file {path} has sha256 {file_hash(path)}", file=sys.stderr)


def _download(url, part, timeout, progress):
    """Download ``url`` into ``part``, resuming from its current size. Returns True if resumed."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "deeplab-keras"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch: the part is complete (or stale)
            return True
        raise
    with response:
        resumed = have > 0 and response.status == 206
        mode = "ab" if resumed else "wb"
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        bar = None
        if progress:
            from keras.utils import Progbar
            bar = Progbar(total, unit_name="B")
        done = have if resumed else 0
        with open(part, mode) as f:
            while True:
                block = response.read(CHUNK)
                if not block:
                    break
                f.write(block)
                done += len(block)
                if bar is not None:
                    bar.update(done)
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)
    return resumed


def extract_tar(archive, dest):
    """Extract ``archive`` into directory ``dest`` safely and atomically; returns ``dest``.

    Refuses absolute paths, ``..`` components, links pointing outside ``dest`` and device files."""
    if os.path.isdir(dest):
        return dest
    tmp = dest + ".extracting"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    root = os.path.realpath(tmp)
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, root)
            tar.extractall(tmp, members=members, filter="data")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    os.replace(tmp, dest)
    return dest


def _check_member(member, root):
    name = member.name
    parts = name.replace("\\", "/").split("/")
    if os.path.isabs(name) or name.startswith(("/", "\\")) or ".." in parts:
        raise ValueError(f"unsafe path in archive refused: {name!r}")
    if member.isdev() or member.isfifo():
        raise ValueError(f"device or fifo in archive refused: {name!r}")
    if member.issym() or member.islnk():
        base = root if member.islnk() else os.path.dirname(os.path.join(root, name))
        target = os.path.realpath(os.path.join(base, member.linkname))
        if os.path.isabs(member.linkname) or not (target == root or target.startswith(root + os.sep)):
            raise ValueError(f"link escaping the extraction directory refused: {name!r} -> "
                             f"{member.linkname!r}")
