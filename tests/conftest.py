import os
import pathlib

import pytest

from tests.loopback import Server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPO = pathlib.Path(__file__).resolve().parents[1]
SHARED = pathlib.Path(os.environ.get("DEEPLAB_KERAS_SHARED", REPO.parent / "shared"))
REFERENCE = SHARED / "reference"
CAMVID = SHARED / "data" / "camvid"


def need(path):
    """Skip the calling test when shared material is absent (a user's fresh clone)."""
    if not pathlib.Path(path).exists():
        pytest.skip(f"shared material not found: {path} (see README: ../shared)")
    return pathlib.Path(path)


@pytest.fixture
def server():
    """A loopback HTTP server (tests/loopback.py), closed after the test."""
    s = Server()
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty download cache of the test's own, no mirror."""
    from deeplab_keras import download
    path = tmp_path / "cache"
    monkeypatch.setenv(download.CACHE_ENV, str(path))
    monkeypatch.delenv(download.MIRROR_ENV, raising=False)
    return path
