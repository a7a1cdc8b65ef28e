"""One bounded HTTP transfer (issue 19: downloads that always end): resume with ``Range``, an
overall deadline, a minimum rate over each :data:`RATE_WINDOW`, a size bound, and a
``Content-Length`` that must be a number. :mod:`deeplab_keras.download` builds on it."""
import http.client
import os
import re
import sys
import time
import urllib.error
import urllib.request

CHUNK = 1 << 16
DEADLINE_ENV = "DEEPLAB_KERAS_DOWNLOAD_DEADLINE"
MIN_RATE_ENV = "DEEPLAB_KERAS_DOWNLOAD_MIN_RATE"
MAX_BYTES_ENV = "DEEPLAB_KERAS_DOWNLOAD_MAX_BYTES"
DEADLINE = 3600.0        # seconds for one fetch, retries included
MIN_RATE = 1024.0        # bytes/s a transfer must keep up over each RATE_WINDOW
RATE_WINDOW = 30.0       # seconds
MAX_BYTES = 4 * 2**30    # bound on a file without a pinned size


class DownloadError(OSError):
    """A file could not be fetched (offline, HTTP error, server cut the transfer)."""


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


def _content_range_start(value):
    """Start offset of a ``Content-Range: bytes START-END/TOTAL`` header, or None."""
    m = re.match(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*$", value or "")
    return int(m.group(1)) if m else None


class Budget:
    """The bounds of one fetch: an overall deadline (``time.monotonic()``), a minimum rate
    over each :data:`RATE_WINDOW`, a size limit (``exact``: the pinned size)."""

    def __init__(self, url, end, min_rate, limit, exact, fix="try again later"):
        self.url, self.end, self.min_rate, self.limit, self.exact = url, end, min_rate, limit, exact
        self.fix, self.window = fix, None

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
        raise LimitError(f"download of {self.url} stopped: {why}. Nothing was kept; {self.fix}.")


def _content_length(url, response, have, budget):
    """The announced size of the reply (None when absent); refuses a malformed one and one
    beyond the budget's limit before reading the body."""
    length = response.headers.get("Content-Length")
    if length is None:
        return None
    if not length.strip().isdigit():
        raise DownloadError(f"download of {url} refused: the server sent an invalid "
                            f"Content-Length {length!r}. Nothing was kept; {budget.fix}.")
    total = int(length) + have
    if total > budget.limit:
        budget.check(total)
    return total


def download(url, part, timeout, progress, budget):
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
                return download(url, part, timeout, progress, budget)
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
