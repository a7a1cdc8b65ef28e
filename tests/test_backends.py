"""Keras 3 on every backend (issue 21): each backend runs in its own process
(tests/backend_worker.py with KERAS_BACKEND set) and is checked against this process, which runs
TensorFlow: the whole family and every backbone on .keras files saved here, the CamVid preset's
class maps, a .keras file saved under PyTorch loaded under JAX, and the refusal of what stays
TensorFlow. A backend that is not installed is skipped with the extra that installs it."""
import importlib.util
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import deeplab_keras as dk
from tests.conftest import CAMVID, REPO, need
from tests.factories import tiny_config

BACKENDS = ["jax", "torch"]
TINY = tiny_config(without=("atrous_rates",), num_classes=3)  # the builder's default rates


def _installed(backend):
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed (pip install -e \".[{backend}]\")")


def run_worker(backend, *tasks, timeout=1800):
    """``tests/backend_worker.py`` under ``KERAS_BACKEND=backend`` for ``tasks``, each a
    ``(task, in_dir, out_dir)``, all in one process; the process must end cleanly."""
    _installed(backend)
    argv = []
    for task, in_dir, out_dir in tasks:
        os.makedirs(out_dir, exist_ok=True)
        argv += [task, str(in_dir), str(out_dir)]
    # XLA's backend optimisation level 0: under JAX most of the worker's time is XLA compiling
    # each weight shape's initializer and each op once (a compile per new shape); level 0 cut the
    # family's CPU time from 105 s to 68 s here. What is checked is our model code's numbers on
    # the backend, which level 0 computes within the same tolerances.
    env = dict(os.environ, KERAS_BACKEND=backend, PYTHONPATH=str(REPO),
               TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", JAX_PLATFORMS="cpu",
               XLA_FLAGS=(os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=0").strip())
    proc = subprocess.run([sys.executable, "-m", "tests.backend_worker", *argv], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]


def read_result(backend, out_dir):
    """A task's ``result.json``: it ran on ``backend`` and raised nothing."""
    with open(os.path.join(out_dir, "result.json")) as f:
        result = json.load(f)
    assert "error" not in result, result["error"][-3000:]
    assert result["backend"] == backend
    return result


def family_models():
    """v1, v2 (multi-scale input), v3, v3+ on the VGG, ResNet and both MobileNet backbones, with
    all three resize semantics, with and without in-graph preprocessing; random weights, tiny
    where possible. (Xception adds ~2 minutes on 2 cores: its layers are the ResNet's and
    MobileNet's kinds - convs, depthwise convs, BatchNorm - checked here already.)"""
    return {
        "v1_vgg16_half_pixel": dk.DeepLabV1(num_classes=3, fc_filters=8),
        "v2_resnet50_multiscale_align_corners": dk.DeepLabV2(
            num_classes=3, backbone="resnet50", output_stride=16, atrous_rates=(2, 4),
            multi_scale=True, align_corners=True),
        "v3_asymmetric": dk.DeepLabV3(atrous_rates=[], align_corners="asymmetric", **TINY),
        "v3plus_no_preprocessing": dk.DeepLabV3Plus(atrous_rates=[6, 12, 18],
                                                    include_preprocessing=False, **TINY),
        "v3_mobilenet_v3_small": dk.DeepLabV3(num_classes=3, backbone="mobilenet_v3_small",
                                              output_stride=16, atrous_rates=[]),
    }


@pytest.fixture(scope="module")
def tf_family(tmp_path_factory):
    """The family saved as .keras files by TensorFlow, with TensorFlow's outputs on one input."""
    import keras

    folder = tmp_path_factory.mktemp("tf_family")
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).uniform(0, 255, (2, 41, 49, 3)).astype("float32")
    np.savez(folder / "input.npz", x=x)
    expected = {}
    for name, model in family_models().items():
        for layer in model.layers:  # non-trivial BatchNorm statistics
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.moving_mean.assign(np.random.default_rng(1).normal(0, 0.1, layer.moving_mean.shape))
                layer.moving_variance.assign(np.random.default_rng(2).uniform(0.5, 2, layer.moving_variance.shape))
        expected[name] = keras.ops.convert_to_numpy(model(x, training=False))
        model.save(folder / f"{name}.keras")
    return folder, expected


def resize_inputs():
    """The images and sizes dk.resize is checked on (the same every call)."""
    rng = np.random.default_rng(7)
    inputs = {f"{h}x{w}": rng.normal(size=(2, h, w, 3)).astype("float32")
              for h, w in [(1, 1), (2, 3), (7, 9), (23, 30)]}
    return inputs, [[1, 1], [3, 4], [13, 17], [90, 120]]


def camvid_images():
    """Three CamVid val images, or None without ../shared."""
    val = CAMVID / "val"
    return [str(p) for p in sorted(val.glob("*.png"))[:3]] if val.is_dir() else None


@pytest.fixture(scope="module")
def worker(tf_family, tmp_path_factory):
    """``worker(backend, task)`` -> (result, out_dir) of ``task`` run under ``backend``. The first
    call for a backend runs every task below in one worker process (under JAX, compiling each new
    shape once per process dominates: separate processes cost 36 s more for the refusals alone,
    whose tiny model the family task has already compiled)."""
    runs = {}

    def result(backend, task):
        _installed(backend)
        if backend not in runs:
            root = tmp_path_factory.mktemp(f"worker_{backend}")
            inputs, sizes = resize_inputs()
            np.savez(root / "input.npz", **inputs)
            with open(root / "sizes.json", "w") as f:
                json.dump(sizes, f)
            images = camvid_images()
            if images is not None:
                with open(root / "images.json", "w") as f:
                    json.dump(images, f)
            tasks = {"family": tf_family[0], "resize": root, "refusals": root / "refusals_in"}
            if images is not None:
                tasks["camvid"] = root
            os.makedirs(root / "refusals_in", exist_ok=True)
            run_worker(backend, *[(t, in_dir, root / t) for t, in_dir in tasks.items()])
            runs[backend] = root
        out_dir = runs[backend] / task
        return read_result(backend, out_dir), out_dir

    return result


@pytest.mark.parametrize("backend", BACKENDS)
def test_family_matches_tensorflow(backend, tf_family, worker):
    _, expected = tf_family
    _, out_dir = worker(backend, "family")
    got = np.load(out_dir / "outputs.npz")
    assert sorted(got.files) == sorted(expected)
    for name, want in expected.items():
        assert got[name].shape == want.shape == (2, 41, 49, 3), name
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(got[name], want, atol=2e-4 * scale, err_msg=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_resize_equals_tensorflow_kernels(backend, worker):
    """dk.resize's JAX / PyTorch paths (native kernels or keras.ops gathers) = TensorFlow's."""
    from deeplab_keras.layers import resize as R

    inputs, sizes = resize_inputs()
    _, out_dir = worker(backend, "resize")
    got = np.load(out_dir / "resized.npz")
    assert len(got.files) == len(inputs) * len(sizes) * len(R.SEMANTICS) * len(R.METHODS)
    for key in got.files:
        name, size, semantics, method = key.split("|")
        want = R.resize_tf(inputs[name], [int(s) for s in size.split("x")], semantics, method)
        np.testing.assert_allclose(got[key], want.numpy(), rtol=0, atol=2e-5, err_msg=key)


@pytest.mark.parametrize("backend", BACKENDS)
def test_camvid_preset_class_maps_agree_with_tensorflow(backend, worker):
    need(CAMVID / "val")
    images = camvid_images()
    _, out_dir = worker(backend, "camvid")
    got = np.load(out_dir / "classes.npz")
    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
    for i, path in enumerate(images):
        want = dk.segment(model, path)
        assert got[str(i)].shape == want.shape
        agree = float(np.mean(got[str(i)] == want))
        assert agree >= 0.999, (backend, path, agree)


def test_keras_file_saved_under_torch_loads_under_jax(tmp_path):
    _installed("torch")
    _installed("jax")
    x = np.random.default_rng(3).uniform(0, 255, (1, 37, 45, 3)).astype("float32")
    np.savez(tmp_path / "input.npz", x=x)
    run_worker("torch", ("save_keras", tmp_path, tmp_path))
    read_result("torch", tmp_path)
    run_worker("jax", ("load_keras", tmp_path, tmp_path / "jax"))
    result = read_result("jax", tmp_path / "jax")
    assert result["labels"] == ["a", "b", "c"]
    saved = np.load(tmp_path / "saved.npz")["y"]
    loaded = np.load(tmp_path / "jax" / "loaded.npz")["y"]
    assert saved.shape == (1, 37, 45, 3)
    np.testing.assert_allclose(loaded, saved, atol=1e-4 * max(1.0, float(np.abs(saved).max())))


@pytest.mark.parametrize("backend", BACKENDS)
def test_tensorflow_only_features_refuse_with_the_fix(backend, worker):
    result, _ = worker(backend, "refusals")
    for what, message in result["messages"].items():
        assert message is not None, f"{what} ran on {backend}"
        assert message.startswith("BackendError") and "KERAS_BACKEND=tensorflow" in message, message
        assert backend in message and "\n" not in message, message
    assert result["written"] == []  # refused before writing anything
