"""MultiWorkerMirroredStrategy across two worker processes on 127.0.0.1 (CPU): both end with
identical weights, and a run whose worker is killed mid-training resumes from the backup."""
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORKER = r'''
import json, os, sys, time
import keras
keras.config.disable_traceback_filtering()
from deeplab_keras.training import train

class Slow(keras.callbacks.Callback):  # stands in for real work so a kill lands mid-run
    def on_train_batch_end(self, batch, logs=None):
        time.sleep(float(os.environ.get("SLOW", "0")))

config = json.loads(sys.argv[1])
index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
model, history = train(config, callbacks=[Slow()])
model.save_weights(os.path.join(config["output_dir"], f"final{index}.weights.h5"))
with open(os.path.join(config["output_dir"], f"result{index}.json"), "w") as f:
    json.dump({"epochs": history.epoch, "iterations": int(model.optimizer.iterations.numpy())}, f)
'''


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _setup(tmp_path, epochs):
    rng = np.random.default_rng(0)
    for i in range(8):
        label = rng.integers(0, 3, (40, 40)).astype(np.uint8)
        for sub, arr in (("images", np.stack([label * 60] * 3, -1).astype(np.uint8)), ("masks", label)):
            os.makedirs(tmp_path / "data" / sub, exist_ok=True)
            Image.fromarray(arr).save(tmp_path / "data" / sub / f"{i}.png")
    config = {"name": "dist", "architecture": "deeplabv3",
              "model": {"backbone": "mobilenet_v2", "alpha": 0.35, "output_stride": 16,
                        "atrous_rates": []},
              "dataset": "folder", "data_root": str(tmp_path / "data"), "num_classes": 3,
              "val_split": None, "crop_size": [33, 33], "batch_size": 4, "epochs": epochs,
              "steps_per_epoch": 3, "learning_rate": 0.01, "strategy": "multi_worker",
              "freeze_bn": False, "sync_bn": True, "tensorboard": False, "verbose": 0,
              "output_dir": str(tmp_path / "run")}
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    return config, script


def _start(config, script, ports, index, slow=0.0):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               CUDA_VISIBLE_DEVICES="", SLOW=str(slow), TF_CPP_MIN_LOG_LEVEL="2",
               TF_CONFIG=json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                                     "task": {"type": "worker", "index": index}}))
    log = open(_log(config, index), "ab")
    return subprocess.Popen([sys.executable, str(script), json.dumps(config)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)


def _log(config, index):
    """Worker logs go beside the run folder (the run folder takes only what training writes)."""
    folder = os.path.join(os.path.dirname(config["output_dir"]), "logs")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"worker{index}.log")


def _progress(config):
    """What changes while the workers work: sizes and times of their logs and run files."""
    state = []
    for folder in (os.path.dirname(_log(config, 0)), config["output_dir"]):
        for root, _, files in os.walk(folder):
            for name in files:
                try:
                    st = os.stat(os.path.join(root, name))
                    state.append((root, name, st.st_size, st.st_mtime_ns))
                except OSError:
                    pass
    return sorted(state)


def _wait(procs, config, stall=600):
    """Wait for the workers, failing only when nothing has progressed for ``stall`` seconds
    (a loaded machine makes them slow, not stuck)."""
    last, since = _progress(config), time.monotonic()
    while any(p.poll() is None for p in procs):
        if any(p.poll() not in (None, 0) for p in procs):
            break  # one failed: the other would wait for it forever
        time.sleep(1)
        now = _progress(config)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            break
    for q in procs:
        if q.poll() is None:
            q.kill()
            q.wait()
    for i, p in enumerate(procs):
        if p.returncode != 0:
            log = open(_log(config, i), errors="replace").read()
            pytest.fail(f"worker {i} exited with {p.returncode} (no progress for {stall}s when "
                        f"killed: {p.returncode == -9}):\n{log[-3000:]}")


def _weights(path):
    import h5py
    out = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.append((name, np.array(obj)))
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def _assert_same_weights(run):
    a, b = _weights(run / "final0.weights.h5"), _weights(run / "final1.weights.h5")
    assert [n for n, _ in a] == [n for n, _ in b] and len(a) > 100
    for (name, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y, err_msg=name)


def test_two_workers_end_with_identical_weights(tmp_path):
    config, script = _setup(tmp_path, epochs=2)
    os.makedirs(config["output_dir"])
    ports = _free_ports(2)
    _wait([_start(config, script, ports, i) for i in range(2)], config)
    run = tmp_path / "run"
    _assert_same_weights(run)
    for i in range(2):
        assert json.loads((run / f"result{i}.json").read_text()) == {"epochs": [0, 1], "iterations": 6}
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2]


def test_killed_worker_resumes_from_backup(tmp_path):
    config, script = _setup(tmp_path, epochs=4)
    os.makedirs(config["output_dir"])
    meta = tmp_path / "run" / ".deeplab-keras-backup" / "training_metadata.json"
    ports = _free_ports(2)
    procs = [_start(config, script, ports, i, slow=0.4) for i in range(2)]
    last, since = _progress(config), time.monotonic()
    while not (meta.exists() and json.loads(meta.read_text() or "{}").get("epoch", 0) >= 1):
        assert all(p.poll() is None for p in procs), "a worker ended before a backup was written"
        now = _progress(config)
        if now != last:
            last, since = now, time.monotonic()
        assert time.monotonic() - since < 600, "no progress for 600 s before the first backup"
        time.sleep(0.1)
    procs[1].send_signal(signal.SIGKILL)  # preempted mid-run
    procs[1].wait()
    procs[0].kill()  # the survivor cannot go on alone: the cluster restarts, as after a preemption
    procs[0].wait()
    done = json.loads(meta.read_text())["epoch"]
    assert 1 <= done < 4
    ports = _free_ports(2)
    _wait([_start(config, script, ports, i) for i in range(2)], config)
    run = tmp_path / "run"
    for i in range(2):
        result = json.loads((run / f"result{i}.json").read_text())
        assert result["epochs"] == list(range(done, 4))  # finished epochs are not run again
        assert result["iterations"] == 12  # optimizer state restored: 4 epochs x 3 steps
    _assert_same_weights(run)
    assert [h["epoch"] for h in json.loads((run / "history.json").read_text())] == [1, 2, 3, 4]
    assert not (run / ".deeplab-keras-backup").exists()
