"""Issue 11: bad input, faults and concurrency lose nothing and say what is wrong.

Every test here is one bad-input or fault case (counted in the README's Reliability section).
HTTP cases use a bounded server on 127.0.0.1; the concurrency case runs 4 real processes."""
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time

import numpy as np
import pytest

from deeplab_keras import download
from deeplab_keras.utils import io as dkio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ----------------------------------------------------------------------------------------------
# (1) exports never replace what we did not write

def _victim(folder):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "notes.txt").write_text("user data")
    (folder / "sub").mkdir(exist_ok=True)
    (folder / "sub" / "photo.jpg").write_bytes(b"\xff\xd8 user photo")
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in folder.rglob("*")}


def _same(folder, snapshot):
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in folder.rglob("*")} == snapshot


@pytest.fixture(scope="module")
def tiny_model():
    import keras
    import deeplab_keras as dk
    keras.utils.set_random_seed(0)
    return dk.build_model("deeplabv3", num_classes=3, backbone="mobilenet_v2", alpha=0.35,
                          atrous_rates=(), output_stride=16)


@pytest.mark.parametrize("fmt", ["saved_model", "tflite"])
def test_export_refuses_user_folder(tiny_model, tmp_path, fmt):
    from deeplab_keras.export import export_model
    victim = tmp_path / "victim"
    snapshot = _victim(victim)
    with pytest.raises(dkio.OutputExistsError, match="not a previous deeplab-keras export.*--overwrite"):
        export_model(tiny_model, victim, fmt, input_size=65)
    assert _same(victim, snapshot)


def test_export_refuses_user_file(tiny_model, tmp_path):
    from deeplab_keras.export import export_model
    target = tmp_path / "model.tflite"
    target.write_bytes(b"somebody else's model")
    with pytest.raises(dkio.OutputExistsError, match="existing file"):
        export_model(tiny_model, target, "tflite", input_size=65)
    assert target.read_bytes() == b"somebody else's model"


def test_cli_export_output_dot_never_deletes_working_tree(tmp_path, monkeypatch, capsys):
    from deeplab_keras import cli
    snapshot = _victim(tmp_path)
    monkeypatch.chdir(tmp_path)
    for extra in ([], ["--overwrite"]):
        code = cli.main(["export", "--architecture", "deeplabv3", "--config",
                         '{"num_classes": 3, "backbone": "mobilenet_v2", "alpha": 0.35}',
                         "--format", "saved_model", "--input-size", "65", "--output", ".", *extra])
        assert code == 1
        assert "never replaced" in capsys.readouterr().err
    assert _same(tmp_path, snapshot)


def test_export_replaces_own_previous_export_and_cleans_killed_temp(tiny_model, tmp_path):
    from deeplab_keras.export import export_model
    out = tmp_path / "sm"
    export_model(tiny_model, out, "saved_model", input_size=65)
    assert (out / "assets.extra" / "deeplab_keras.json").is_file()
    # a killed export left its hidden temp folder (PID of a process that no longer runs)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".sm.tmp{dead.pid}"
    (stale / "variables").mkdir(parents=True)
    export_model(tiny_model, out, "saved_model", input_size=65)  # ours: replaced without asking
    assert not stale.exists()
    assert sorted(os.listdir(tmp_path)) == ["sm"]
    (out / "user.txt").write_text("added by the user")  # no longer only ours
    with pytest.raises(dkio.OutputExistsError):
        export_model(tiny_model, out, "saved_model", input_size=65)
    assert (out / "user.txt").read_text() == "added by the user"
    export_model(tiny_model, out, "saved_model", input_size=65, overwrite=True)
    assert not (out / "user.txt").exists() and (out / "saved_model.pb").is_file()
