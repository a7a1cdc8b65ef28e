"""Issue 19 (4): downloads that always end. A hostile server on 127.0.0.1 (tests/loopback.py)
drips, never stops, lies about its length; the disk fills; another process holds the lock.
Every case ends with a one-line error naming the URL and the fix, and leaves nothing behind."""
import os
import subprocess
import sys

import pytest

from deeplab_keras import download

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.urandom(300_000)


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def _one_line(err):
    text = str(err.value)
    assert "\n" not in text, text
    return text


def test_dripping_server_stops_at_the_minimum_rate(server, cache, monkeypatch):
    from deeplab_keras import transfer
    monkeypatch.setattr(transfer, "RATE_WINDOW", 0.3)
    server.add("/drip.bin", DATA, "drip")  # 20 bytes/s
    url = server.url + "/drip.bin"
    with pytest.raises(download.LimitError) as err:
        download.fetch(url, "drip.bin", allow_unpinned=True, progress=False, min_rate=1000,
                       retries=0)
    text = _one_line(err)
    assert url in text and "bytes/s" in text and download.MIN_RATE_ENV in text
    assert _files(cache) == []


def test_dripping_server_stops_at_the_overall_deadline(server, cache):
    server.add("/drip.bin", DATA, "drip")
    url = server.url + "/drip.bin"
    with pytest.raises(download.LimitError) as err:  # the rate (20 B/s) is fine, the time is not
        download.fetch(url, "drip.bin", allow_unpinned=True, progress=False, min_rate=1,
                       deadline=0.5, retries=2)
    text = _one_line(err)
    assert url in text and "deadline" in text and download.DEADLINE_ENV in text
    assert _files(cache) == [] and server.gets("/drip.bin") == 1  # not retried past the deadline


def test_deadline_from_the_environment(server, cache, monkeypatch):
    monkeypatch.setenv(download.DEADLINE_ENV, "0.4")
    server.add("/drip.bin", DATA, "drip")
    with pytest.raises(download.LimitError, match="deadline"):
        download.fetch(server.url + "/drip.bin", "drip.bin", allow_unpinned=True, progress=False,
                       min_rate=1)
    assert _files(cache) == []


def test_endless_response_stops_at_the_pinned_size(server, cache):
    sha = server.add("/endless.bin", DATA, "endless")
    url = server.url + "/endless.bin"
    with pytest.raises(download.LimitError) as err:
        download.fetch(url, "endless.bin", sha256=sha, size=len(DATA), progress=False)
    text = _one_line(err)
    assert url in text and f"pinned size of {len(DATA)} bytes" in text
    assert _files(cache) == []


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_endless_unpinned_response_stops_at_max_bytes(server, cache, monkeypatch, how):
    server.add("/endless.bin", DATA, "endless")
    kwargs = {"max_bytes": 1_000_000} if how == "argument" else {}
    if how == "environment":
        monkeypatch.setenv(download.MAX_BYTES_ENV, "1000000")
    with pytest.raises(download.LimitError) as err:
        download.fetch(server.url + "/endless.bin", "endless.bin", allow_unpinned=True,
                       progress=False, **kwargs)
    assert "more than 1000000 bytes" in _one_line(err) and download.MAX_BYTES_ENV in str(err.value)
    assert _files(cache) == []


def test_announced_length_beyond_the_pinned_size_refused_before_the_body(server, cache):
    sha = server.add("/big.bin", DATA)
    with pytest.raises(download.LimitError, match="pinned size of 1000 bytes"):
        download.fetch(server.url + "/big.bin", "big.bin", sha256=sha, size=1000, progress=False)
    assert _files(cache) == []


def test_invalid_content_length_names_the_url(server, cache):
    server.add("/abc.bin", DATA, "bad_length")
    url = server.url + "/abc.bin"
    with pytest.raises(download.DownloadError) as err:
        download.fetch(url, "abc.bin", allow_unpinned=True, progress=False)
    text = _one_line(err)
    assert url in text and "Content-Length 'abc'" in text
    assert _files(cache) == []


def test_failed_download_leaves_no_partial_file(server, cache):
    server.add("/cut.bin", DATA, "always_cut")
    with pytest.raises(download.DownloadError, match="could not download"):
        download.fetch(server.url + "/cut.bin", "cut.bin", allow_unpinned=True, progress=False,
                       retries=1)
    assert server.gets("/cut.bin") == 2 and _files(cache) == []


@pytest.mark.parametrize("env,value", [
    (download.DEADLINE_ENV, "abc"), (download.DEADLINE_ENV, "-5"), (download.DEADLINE_ENV, "0"),
    (download.MIN_RATE_ENV, "nan"), (download.MIN_RATE_ENV, "inf"), (download.MAX_BYTES_ENV, "-1"),
])
def test_bad_limit_settings_refused(server, cache, monkeypatch, env, value):
    monkeypatch.setenv(env, value)
    server.add("/x.bin", DATA)
    with pytest.raises(ValueError, match=f"\\${env} must be a positive number"):
        download.fetch(server.url + "/x.bin", "x.bin", allow_unpinned=True, progress=False)
    assert server.requests == [] and _files(cache) == []


def test_cache_env_with_tilde_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv(download.CACHE_ENV, "~/dkcache")
    monkeypatch.chdir(tmp_path)
    assert download.cache_dir() == str(tmp_path / "home" / "dkcache")
    assert not (tmp_path / "~").exists() and (tmp_path / "home" / "dkcache").is_dir()


_FULL_DISK = """
import resource, signal, sys
sys.path.insert(0, sys.argv[1])
from deeplab_keras import download
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # a write past the limit fails with EFBIG
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))
try:
    download.fetch(sys.argv[2], "full.bin", allow_unpinned=True, progress=False)
except download.CacheError as err:
    print("CacheError:", err)
"""


def test_full_disk_removes_the_partial_and_says_so(server, cache):
    """A file-size limit (a full disk as the process sees it) in a real process."""
    server.add("/full.bin", DATA)
    url = server.url + "/full.bin"
    proc = subprocess.run([sys.executable, "-c", _FULL_DISK, REPO, url], capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, **{download.CACHE_ENV: str(cache)}))
    assert proc.returncode == 0, proc.stderr[-2000:]
    line = proc.stdout.strip()
    assert line.startswith("CacheError:") and url in line and "partial file was removed" in line
    assert download.CACHE_ENV in line and "\n" not in line
    assert _files(cache) == []


def test_full_disk_error_from_write(server, cache, monkeypatch):
    """ENOSPC itself (the errno a full disk gives) at the first write."""
    import builtins
    import errno
    server.add("/enospc.bin", DATA)
    real_open = builtins.open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, block):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Full(f) if ".part." in str(path) and "b" in mode and "w" in mode else f

    monkeypatch.setattr(builtins, "open", fake_open)
    with pytest.raises(download.CacheError) as err:
        download.fetch(server.url + "/enospc.bin", "enospc.bin", allow_unpinned=True, progress=False)
    assert "no space left" in _one_line(err)
    monkeypatch.setattr(builtins, "open", real_open)
    assert _files(cache) == []


_HOLDER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from deeplab_keras import download
with download.file_lock(sys.argv[2]):
    open(sys.argv[3], "w").close()
    while not os.path.exists(sys.argv[4]):
        time.sleep(0.05)
"""


def test_waiting_for_another_process_says_so(server, cache, tmp_path, capsys):
    sha = server.add("/locked.bin", DATA)
    dest = os.path.join(download.cache_dir(), "locked.bin")
    ready, done = tmp_path / "ready", tmp_path / "done"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, REPO, dest, str(ready), str(done)])
    try:
        while not ready.exists():
            assert holder.poll() is None, "the lock holder died"
            import time
            time.sleep(0.05)
        with pytest.raises(download.DownloadError, match="another process"):
            download.fetch(server.url + "/locked.bin", "locked.bin", sha256=sha, progress=False,
                           lock_timeout=0.5)
        assert "waiting for another process that is writing" in capsys.readouterr().err
        assert server.requests == []
    finally:
        done.touch()
        holder.wait(timeout=120)
    assert download.fetch(server.url + "/locked.bin", "locked.bin", sha256=sha, progress=False)


def test_limits_defaults_and_arguments(monkeypatch):
    for env in (download.DEADLINE_ENV, download.MIN_RATE_ENV, download.MAX_BYTES_ENV):
        monkeypatch.delenv(env, raising=False)
    assert download.limits() == (download.DEADLINE, download.MIN_RATE, download.MAX_BYTES)
    monkeypatch.setenv(download.MIN_RATE_ENV, "10")
    assert download.limits(deadline=5, max_bytes=7) == (5.0, 10.0, 7)
    with pytest.raises(ValueError, match="deadline must be a positive number"):
        download.limits(deadline=-1)
