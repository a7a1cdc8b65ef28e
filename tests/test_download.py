"""Downloads against a local HTTP server on 127.0.0.1: mirror, checksum refusal, cut transfers,
Range resumption, offline errors, safe tar extraction."""
import hashlib
import io
import os
import socket
import tarfile

import pytest

from deeplab_keras import archives, download


DATA = os.urandom(200_000)
UNREACHABLE = "https://download.invalid/models/x.bin"  # only used through the mirror


def test_mirror_download_verified_and_cached(server, cache, monkeypatch):
    sha = server.add("w.bin", DATA)
    monkeypatch.setenv(download.MIRROR_ENV, server.url + "/")
    path = download.fetch(UNREACHABLE, "w.bin", sha256=sha, size=len(DATA), progress=True)
    assert open(path, "rb").read() == DATA and os.path.dirname(path) == str(cache)
    assert sorted(os.listdir(cache)) == ["w.bin"]
    download.fetch(UNREACHABLE, "w.bin", sha256=sha, progress=False)
    assert len(server.requests) == 1  # second call served from the cache


def test_tampered_file_refused_and_nothing_kept(server, cache, monkeypatch):
    sha = hashlib.sha256(DATA).hexdigest()
    server.add("t.bin", DATA[:-1] + b"X")
    monkeypatch.setenv(download.MIRROR_ENV, server.url)
    with pytest.raises(download.ChecksumError, match="sha256"):
        download.fetch(UNREACHABLE, "t.bin", sha256=sha, progress=False)
    assert os.listdir(cache) == []


def test_truncated_body_refused(server, cache):
    sha = server.add("s.bin", DATA, "short")
    with pytest.raises(download.ChecksumError):
        download.fetch(server.url + "/s.bin", "s.bin", sha256=sha, progress=False)
    assert os.listdir(cache) == []


@pytest.mark.parametrize("mode", ["cut_once", "cut_once_no_range"])
def test_cut_transfer_resumes_or_restarts(server, cache, mode):
    sha = server.add("c.bin", DATA, mode)
    path = download.fetch(server.url + "/c.bin", "c.bin", sha256=sha, progress=False)
    assert open(path, "rb").read() == DATA
    assert len(server.requests) == 2
    assert server.requests[1][1] == f"bytes={len(DATA) // 2}-"  # resumed from the kept part
    assert os.listdir(cache) == ["c.bin"]


def test_always_cut_gives_clear_error(server, cache):
    sha = server.add("a.bin", DATA, "always_cut")
    with pytest.raises(download.DownloadError, match="could not download .*a.bin") as err:
        download.fetch(server.url + "/a.bin", "a.bin", sha256=sha, retries=1, progress=False)
    assert str(cache / "a.bin") in str(err.value)
    assert not (cache / "a.bin").exists()


def test_offline_error_names_url_and_cache_path(cache):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/models/deeplab.tar.gz"
    with pytest.raises(download.DownloadError) as err:
        download.fetch(url, "deeplab.tar.gz", sha256="0" * 64, retries=0, progress=False)
    message = str(err.value)
    assert url in message and str(cache / "deeplab.tar.gz") in message


def test_unpinned_needs_opt_in(server, cache, capsys):
    server.add("u.bin", DATA)
    with pytest.raises(ValueError, match="allow_unpinned"):
        download.fetch(server.url + "/u.bin", "u.bin", progress=False)
    assert server.requests == []
    path = download.fetch(server.url + "/u.bin", "u.bin", allow_unpinned=True, progress=False)
    assert hashlib.sha256(DATA).hexdigest() in capsys.readouterr().err
    assert open(path, "rb").read() == DATA


def test_corrupt_cached_file_is_replaced(server, cache):
    sha = server.add("r.bin", DATA)
    cache.mkdir(exist_ok=True)
    (cache / "r.bin").write_bytes(b"stale")
    path = download.fetch(server.url + "/r.bin", "r.bin", sha256=sha, progress=False)
    assert open(path, "rb").read() == DATA


def _tar(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, target in members:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, target
                tar.addfile(info)
            else:
                info.size = 3
                tar.addfile(info, io.BytesIO(b"abc"))
    return str(path)


@pytest.mark.parametrize("bad", [("../evil.txt", "file", None), ("/tmp/evil_abs.txt", "file", None),
                                 ("d/../../evil.txt", "file", None),
                                 ("d/link", "sym", "../../outside"), ("link2", "sym", "/etc/passwd")])
def test_tar_traversal_refused(tmp_path, bad):
    archive = _tar(tmp_path / "a.tar.gz", [("d/model.ckpt.index", "file", None), bad])
    dest = tmp_path / "out" / "extracted"
    with pytest.raises(ValueError, match="refused"):
        archives.extract_tar(archive, str(dest))
    assert not dest.exists() and not (tmp_path / "evil.txt").exists()
    assert not os.path.exists(str(dest) + ".extracting")


def test_tar_extracts_safely(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [("d/model.ckpt.index", "file", None),
                                            ("d/link", "sym", "model.ckpt.index")])
    dest = archives.extract_tar(archive, str(tmp_path / "ok"))
    assert open(os.path.join(dest, "d", "model.ckpt.index"), "rb").read() == b"abc"
