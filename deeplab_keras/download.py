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
  over :data:`RATE_WINDOW` seconds, default 1024), and a size bound: a pinned size exactly, else
  ``$DEEPLAB_KERAS_DOWNLOAD_MAX_BYTES`` (default 4 GiB). A failed download leaves no partial
  file (a full disk included).
"""
import errno
import hashlib
import http.client
import json
import os
import re
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

CACHE_ENV = "DEEPLAB_KERAS_CACHE"
MIRROR_ENV = "DEEPLAB_KERAS_MIRROR"
CHUNK = 1 << 16
LOCK_TIMEOUT = 3600.0  # seconds a process waits for another one downloading the same file
RECORD_SUFFIX = ".record.json"  # sha256 recorded at an unpinned file's first download
DEADLINE_ENV = "DEEPLAB_KERAS_DOWNLOAD_DEADLINE"
MIN_RATE_ENV = "DEEPLAB_KERAS_DOWNLOAD_MIN_RATE"
MAX_BYTES_ENV = "DEEPLAB_KERAS_DOWNLOAD_MAX_BYTES"
DEADLINE = 3600.0        # seconds for one fetch, retries included
MIN_RATE = 1024.0        # bytes/s a transfer must keep up over each RATE_WINDOW
RATE_WINDOW = 30.0       # seconds
MAX_BYTES = 4 * 2**30    # bound on a file without a pinned size


class ChecksumError(ValueError):
    """A file's content does not match its pinned checksum."""


class FormatError(ChecksumError):
    """A downloaded file is not in the format its name says (an HTML error page, a corrupt
    ``.tflite``, a tarball that does not open)."""


class DownloadError(OSError):
    """A file could not be fetched (offline, HTTP error, server cut the transfer)."""


class CacheError(OSError):
    """The cache folder cannot be created or written (read-only file system, permissions)."""


class LimitError(DownloadError):
    """A transfer broke a bound: the overall deadline, the minimum rate, the size."""


def _setting(value, env, default, name):
    """A positive number: ``value`` if given, else ``$env``, else ``default``."""
    if value is None:
        value = os.environ.get(env) or default
        where = f"${env}" if os.environ.get(env) else name
    else:
        where = name
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not number > 0 or number == float("inf"):
        raise ValueError(f"{where} must be a positive number, got {value!r}")
    return number


def limits(deadline=None, min_rate=None, max_bytes=None):
    """``(deadline s, min rate B/s, max bytes)`` from the arguments, else the environment
    (:data:`DEADLINE_ENV`, :data:`MIN_RATE_ENV`, :data:`MAX_BYTES_ENV`), else the defaults."""
    return (_setting(deadline, DEADLINE_ENV, DEADLINE, "deadline"),
            _setting(min_rate, MIN_RATE_ENV, MIN_RATE, "min_rate"),
            int(_setting(max_bytes, MAX_BYTES_ENV, MAX_BYTES, "max_bytes")))


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
    :data:`RATE_WINDOW`) and ``max_bytes`` (bound of a file without a pinned ``size``) default
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
    _make_writable_folder(folder, dest, sha256)
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
                    size if size is not None else max_bytes, size is not None)
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


def _make_writable_folder(folder, dest, sha256):
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


def check_format(path, name=None):
    """Raise :class:`FormatError` unless ``path`` looks like the format its name says: an HTML
    or XML page is never a weights file, a ``.tflite`` must parse as a TFLite flatbuffer, a
    tarball must open, an ``.h5`` must be HDF5, a ``.keras`` / ``.zip`` a zip archive."""
    name = os.path.basename(name or path)
    with open(path, "rb") as f:
        head = f.read(4096)
    start = head.lstrip()[:64].lower()
    if start.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body")):
        raise FormatError(f"{name}: the server sent an HTML/XML page ({len(head)} bytes start "
                          f"with {head[:40]!r}), not the file")
    if not head:
        raise FormatError(f"{name}: empty file")
    if name.endswith(".tflite"):
        _check_tflite(path, name, head)
    elif name.endswith((".tar.gz", ".tgz", ".tar")):
        try:
            with tarfile.open(path) as tar:
                if tar.next() is None:
                    raise FormatError(f"{name}: empty tar archive")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise FormatError(f"{name}: not a readable tar archive ({err})") from None
    elif name.endswith(".h5"):
        signature = b"\x89HDF\r\n\x1a\n"
        with open(path, "rb") as f:
            if not any((f.seek(o) or f.read(8)) == signature for o in (0, 512, 1024, 2048)):
                raise FormatError(f"{name}: not an HDF5 file (no HDF5 signature)")
    elif name.endswith((".keras", ".zip")):
        import zipfile
        if not zipfile.is_zipfile(path):
            raise FormatError(f"{name}: not a zip archive")


def _check_tflite(path, name, head):
    if head[4:8] != b"TFL3":
        raise FormatError(f"{name}: not a TFLite flatbuffer (file identifier {head[4:8]!r}, "
                          "expected b'TFL3')")
    try:
        from tensorflow.lite.python import schema_py_generated as schema
        with open(path, "rb") as f:
            buf = f.read()
        model = schema.Model.GetRootAs(buf, 0)
        buffers = model.BuffersLength()
        if model.SubgraphsLength() < 1:
            raise ValueError("no subgraphs")
        for i in range(model.SubgraphsLength()):
            graph = model.Subgraphs(i)
            for t in range(graph.TensorsLength()):
                if graph.Tensors(t).Buffer() >= max(buffers, 1):
                    raise ValueError(f"tensor {t} points to a missing buffer")
            for o in range(graph.OperatorsLength()):
                if graph.Operators(o).OpcodeIndex() >= model.OperatorCodesLength():
                    raise ValueError(f"operator {o} has an unknown opcode")
    except ImportError:
        return  # TensorFlow is a dependency; without it only the identifier is checked
    except Exception as err:  # struct.error, IndexError... from a corrupt flatbuffer
        raise FormatError(f"{name}: corrupt TFLite flatbuffer ({err})") from None


def _report_unpinned(path, digest=None):
    print(f"deeplab-keras: WARNING: {os.path.basename(path)} is not pinned in the catalogue; "
          f"unverified file {path} has sha256 {digest or file_hash(path)}", file=sys.stderr)


def _content_range_start(value):
    """Start offset of a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


class Budget:
    """The bounds of one fetch: an overall deadline (``time.monotonic()``), a minimum rate
    over each :data:`RATE_WINDOW`, a size limit (``exact``: the pinned size)."""

    def __init__(self, url, end, min_rate, limit, exact):
        self.url, self.end, self.min_rate, self.limit, self.exact = url, end, min_rate, limit, exact
        self.window = None

    def timeout(self, timeout):
        """The socket timeout: ``timeout``, or less when the deadline is nearer."""
        left = self.end - time.monotonic()
        if left <= 0:
            self._fail(f"the overall deadline passed (set {DEADLINE_ENV} or deadline= for more "
                       "time, or use a mirror)")
        return max(0.05, min(timeout, left))

    def start(self, done):
        self.window = (time.monotonic(), done)

    def check(self, done):
        """After each read: raise :class:`LimitError` when a bound is broken."""
        if done > self.limit:
            what = (f"more than its pinned size of {self.limit} bytes (wrong or endless file)"
                    if self.exact else f"more than {self.limit} bytes (set {MAX_BYTES_ENV} or "
                    "max_bytes= if the file really is that large)")
            self._fail(f"the server sent {what}")
        now = time.monotonic()
        if now > self.end:
            self._fail(f"the overall deadline passed (set {DEADLINE_ENV} or deadline= for more "
                       "time, or use a mirror)")
        t0, d0 = self.window
        if now - t0 >= RATE_WINDOW:
            rate = (done - d0) / (now - t0)
            if rate < self.min_rate:
                self._fail(f"the transfer ran at {rate:.0f} bytes/s over {now - t0:.0f} s, below "
                           f"the minimum of {self.min_rate:.0f} (set {MIN_RATE_ENV} or min_rate= "
                           "to accept a slower server, or use a mirror)")
            self.window = (now, done)

    def _fail(self, why):
        raise LimitError(f"download of {self.url} stopped: {why}. Nothing was kept; set "
                         f"{MIRROR_ENV} to a server holding the file, or put it in the cache "
                         "by hand.")


def _content_length(url, response, have, budget):
    """The announced size of the reply (None when absent); refuses a malformed one and one
    beyond the budget's limit before reading the body."""
    length = response.headers.get("Content-Length")
    if length is None:
        return None
    if not length.strip().isdigit():
        raise DownloadError(f"download of {url} refused: the server sent an invalid "
                            f"Content-Length {length!r}. Try again later, set {MIRROR_ENV} to "
                            "another server, or put the file in the cache by hand.")
    total = int(length) + have
    if total > budget.limit:
        budget.check(total)
    return total


def _download(url, part, timeout, progress, budget):
    """Download ``url`` into ``part``, resuming from its current size. Returns True if resumed.

    A ``206`` reply is appended only if its ``Content-Range`` starts exactly at the part's
    size; otherwise the part is discarded and the file fetched again from byte 0. ``budget``
    (:class:`Budget`) bounds time, rate and size."""
    have = os.path.getsize(part) if os.path.exists(part) else 0
    request = urllib.request.Request(url, headers={"User-Agent": "deeplab-keras"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=budget.timeout(timeout))
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # nothing left to fetch: the part is complete (or stale)
            return True
        raise
    with response:
        resumed = have > 0 and response.status == 206
        if resumed:
            start = _content_range_start(response.headers.get("Content-Range"))
            if start != have:
                print(f"deeplab-keras: {url} answered the resume request at byte {have} with "
                      f"Content-Range {response.headers.get('Content-Range')!r}; restarting "
                      "from byte 0", file=sys.stderr)
                response.close()
                os.remove(part)
                return _download(url, part, timeout, progress, budget)
        elif response.status == 206:
            raise http.client.HTTPException(f"{url}: unrequested partial content (206)")
        mode = "ab" if resumed else "wb"
        total = _content_length(url, response, have if resumed else 0, budget)
        bar = None
        if progress:
            from keras.utils import Progbar
            bar = Progbar(total, unit_name="B")
        done = have if resumed else 0
        budget.start(done)
        read = getattr(response, "read1", response.read)
        with open(part, mode) as f:
            while True:
                block = read(CHUNK)  # returns what arrived: the bounds apply per read
                if not block:
                    break
                done += len(block)
                budget.check(done)
                f.write(block)
                if bar is not None:
                    bar.update(done)
        if total is not None and done < total:
            raise http.client.IncompleteRead(b"", total - done)
    return resumed


MAX_EXTRACT_BYTES = 16 * 2**30  # bound on the bytes an archive may extract (tar bombs)
MAX_MEMBERS = 10_000             # bound on the entries an archive may hold
SOURCE_MARKER = ".deeplab_keras_source.json"  # in an extracted folder: the archive's sha256


def extract_tar(archive, dest, *, select=None, max_bytes=None, max_members=None,
                archive_sha256=None):
    """Extract ``archive`` into directory ``dest`` safely and atomically; returns ``dest``.

    Refuses absolute paths, ``..`` components, links pointing outside ``dest`` and device
    files (in any member), archives of more than ``max_members`` entries or whose selected
    files total more than ``max_bytes`` (tar bombs); ``select(name)`` picks the members to
    extract (default all). Nothing is left behind on failure. With ``archive_sha256``, an
    existing ``dest`` is reused only if it was extracted from that archive."""
    max_bytes = MAX_EXTRACT_BYTES if max_bytes is None else max_bytes
    max_members = MAX_MEMBERS if max_members is None else max_members
    if os.path.isdir(dest) and _extracted_from(dest, archive_sha256):
        return dest
    with file_lock(dest):
        if os.path.isdir(dest):
            if _extracted_from(dest, archive_sha256):
                return dest
            print(f"deeplab-keras: {dest} was not extracted from {archive}; extracting again",
                  file=sys.stderr)
            shutil.rmtree(dest)
        tmp = dest + ".extracting"
        shutil.rmtree(tmp, ignore_errors=True)
        os.makedirs(tmp)
        root = os.path.realpath(tmp)
        try:
            with tarfile.open(archive) as tar:
                chosen, total, count = [], 0, 0
                for m in tar:  # streamed: a bomb is refused before it is read to the end
                    count += 1
                    if count > max_members:
                        raise ValueError(f"{archive}: more than {max_members} entries; refused "
                                         "as a possible tar bomb (not a weights archive?)")
                    _check_member(m, root)
                    if select is not None and not (m.isdir() or select(m.name)):
                        continue
                    total += m.size if m.isfile() else 0
                    if total > max_bytes:
                        raise ValueError(f"{archive}: its files would extract to more than "
                                         f"{max_bytes} bytes ({m.name!r} has {m.size}); refused "
                                         "as a possible tar bomb")
                    chosen.append(m)
                tar.extractall(tmp, members=chosen, filter="data")
            if archive_sha256:
                with open(os.path.join(tmp, SOURCE_MARKER), "w") as f:
                    json.dump({"archive": os.path.basename(archive), "sha256": archive_sha256}, f)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        os.replace(tmp, dest)
    return dest


def _extracted_from(dest, archive_sha256):
    if archive_sha256 is None:
        return True  # the caller does not pin the archive (original behaviour)
    try:
        with open(os.path.join(dest, SOURCE_MARKER)) as f:
            return json.load(f).get("sha256") == archive_sha256
    except (OSError, ValueError, AttributeError):
        return False


def is_checkpoint_member(name):
    """TF checkpoint files (``*.ckpt*.index`` / ``.data-*`` / ``.meta``, ``checkpoint``)."""
    base = os.path.basename(name)
    return ".ckpt" in base or base == "checkpoint"


def extract_checkpoint(archive, max_bytes=None, max_members=None):
    """Extract only the checkpoint members of ``archive`` into
    ``<cache>/extracted/<sha256 of the archive>`` (reused only for that archive); a cache that
    cannot be written gets a temporary folder deleted at exit. Returns the folder."""
    digest = file_hash(archive)
    try:
        folder = os.path.join(cache_dir(), "extracted")
        _make_writable_folder(folder, folder, None)
    except CacheError as err:
        import atexit
        folder = tempfile.mkdtemp(prefix="deeplab_keras_extracted_")
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        print(f"deeplab-keras: {err}; extracting {archive} into {folder} for this run only",
              file=sys.stderr)
    return extract_tar(archive, os.path.join(folder, digest[:32]), select=is_checkpoint_member,
                       max_bytes=max_bytes, max_members=max_members, archive_sha256=digest)


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
