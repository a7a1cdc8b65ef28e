"""Issue 11: bad input, faults and concurrency lose nothing and say what is wrong.

Every test here is one bad-input or fault case (counted in the README's Reliability section).
HTTP cases use a bounded server on 127.0.0.1; the concurrency case runs 4 real processes."""
import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from deeplab_keras import archives, download
from deeplab_keras.utils import io as dkio
from tests.factories import tarball, tiny_config

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


# ----------------------------------------------------------------------------------------------
# (2)-(4), (10) downloads: a bounded loopback server

DATA = os.urandom(300_000)
HTML = b"<!DOCTYPE html><html><body>404 Not Found</body></html>\n"


def _tflite_bytes():
    """A small real TFLite flatbuffer (one ADD op)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
    def f(x):
        return x + 1.0
    return tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()]).convert()


def _files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_unpinned_html_error_page_is_not_cached_and_urls_do_not_share_entries(server, cache):
    good = _tflite_bytes()
    server.add("/bad/model.tflite", HTML)
    server.add("/good/model.tflite", good)
    with pytest.raises(download.FormatError, match="HTML.*Nothing was kept"):
        download.fetch(server.url + "/bad/model.tflite", "model.tflite", allow_unpinned=True,
                       progress=False)
    assert _files(cache) == []
    path = download.fetch(server.url + "/good/model.tflite", "model.tflite", allow_unpinned=True,
                          progress=False)
    assert open(path, "rb").read() == good
    with pytest.raises(download.FormatError):  # the good entry is never reused for another URL
        download.fetch(server.url + "/bad/model.tflite", "model.tflite", allow_unpinned=True,
                       progress=False)
    assert server.gets("/bad/model.tflite") == 2


@pytest.mark.parametrize("name,data,match", [
    ("x.tflite", b"\x18\x00\x00\x00TFL3" + b"\xff" * 64, "corrupt TFLite"),
    ("x.tflite", b"not a flatbuffer at all" * 4, "not a TFLite flatbuffer"),
    ("ckpt.tar.gz", b"\x1f\x8b\x08\x00garbage" * 8, "not a readable tar"),
    ("w.h5", b"junk" * 100, "not an HDF5"),
])
def test_unpinned_wrong_format_refused(server, cache, name, data, match):
    server.add("/" + name, data)
    with pytest.raises(download.FormatError, match=match):
        download.fetch(server.url + "/" + name, name, allow_unpinned=True, progress=False)
    assert _files(cache) == []


def test_unpinned_sha256_recorded_and_checked_on_reuse(server, cache, capsys):
    server.add("/u.bin", DATA)
    path = download.fetch(server.url + "/u.bin", "u.bin", allow_unpinned=True, progress=False)
    record = json.loads(open(path + download.RECORD_SUFFIX).read())
    assert record["sha256"] == hashlib.sha256(DATA).hexdigest()
    download.fetch(server.url + "/u.bin", "u.bin", allow_unpinned=True, progress=False)
    assert server.gets("/u.bin") == 1  # reused after checking the record
    with open(path, "r+b") as f:  # tampered in the cache
        f.write(b"EVIL")
    path2 = download.fetch(server.url + "/u.bin", "u.bin", allow_unpinned=True, progress=False)
    assert "changed since it was downloaded" in capsys.readouterr().err
    assert path2 == path and open(path, "rb").read() == DATA and server.gets("/u.bin") == 2


@pytest.mark.parametrize("mode", ["bad_range", "no_content_range"])
def test_resume_with_wrong_content_range_restarts_from_zero(server, cache, mode, capsys):
    server.add("/r.bin", DATA, mode)  # unpinned: only the Content-Range check can catch it
    path = download.fetch(server.url + "/r.bin", "r.bin", allow_unpinned=True, progress=False)
    assert open(path, "rb").read() == DATA
    assert [r for _, r in server.requests] == [None, f"bytes={len(DATA) // 2}-", None]
    assert "restarting from byte 0" in capsys.readouterr().err


_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from deeplab_keras import download  # the package's import loads no TensorFlow
assert "tensorflow" not in sys.modules
kwargs = {"sha256": sys.argv[4]} if sys.argv[4] != "-" else {"allow_unpinned": True}
print(download.fetch(sys.argv[2], sys.argv[3], progress=False, **kwargs))
"""


@pytest.mark.parametrize("pinned", [True, False])
def test_four_processes_fetch_one_file_together(server, cache, tmp_path, pinned, monkeypatch):
    """4 real processes, one cache, one mirror: one download, all succeed, nothing mixed."""
    sha = server.add("/m.tflite.bin", DATA, "slow")
    env = dict(os.environ, **{download.CACHE_ENV: str(cache), download.MIRROR_ENV: server.url})
    module = REPO  # the child imports this checkout's download module
    procs = [subprocess.Popen([sys.executable, "-c", _CHILD, module, "https://x.invalid/m",
                               "m.tflite.bin", sha if pinned else "-"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(4)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, [e for _, e in outs]
    paths = {o.strip() for o, _ in outs}
    assert len(paths) == 1
    assert open(paths.pop(), "rb").read() == DATA
    assert server.gets("/m.tflite.bin") == 1
    assert not [f for f in _files(cache) if ".part" in f]


def test_killed_download_part_is_resumed_by_next_run(server, cache):
    sha = server.add("/k.bin", DATA)
    cache.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (cache / f"k.bin.part.{dead.pid}").write_bytes(DATA[:100_000])  # a killed run's part
    path = download.fetch(server.url + "/k.bin", "k.bin", sha256=sha, progress=False)
    assert open(path, "rb").read() == DATA
    assert server.requests == [("/k.bin", "bytes=100000-")]
    assert _files(cache) == ["k.bin"]


def read_only(folder, monkeypatch, *modules):
    """Make ``folder`` read-only: chmod, and for root (who writes anyway) an ``open`` in the
    given modules that fails like a read-only file system for writes below ``folder``."""
    import builtins
    os.chmod(folder, 0o555)
    if os.access(folder, os.W_OK):
        real = builtins.open

        def fake_open(file, mode="r", *args, **kwargs):
            if any(c in mode for c in "wax+") and os.path.abspath(os.fspath(file)).startswith(str(folder)):
                raise OSError(30, "Read-only file system", os.fspath(file))
            return real(file, mode, *args, **kwargs)
        for module in modules:
            monkeypatch.setattr(module, "open", fake_open, raising=False)


def test_read_only_cache_clear_message_and_verified_reuse(server, cache, monkeypatch):
    sha = server.add("/ro.bin", DATA)
    download.fetch(server.url + "/ro.bin", "ro.bin", sha256=sha, progress=False)
    server.add("/other.bin", DATA)
    read_only(cache, monkeypatch, download)
    try:
        # already cached and verified: still usable from a read-only cache
        assert download.fetch(server.url + "/ro.bin", "ro.bin", sha256=sha, progress=False)
        with pytest.raises(download.CacheError, match="cannot write the download cache .*"
                                                      + download.CACHE_ENV):
            download.fetch(server.url + "/other.bin", "other.bin", sha256=sha, progress=False)
    finally:
        os.chmod(cache, 0o755)


# ----------------------------------------------------------------------------------------------
# (5) converted weights carry a manifest checked before use

TINY = tiny_config(num_classes=3, atrous_rates=())


@pytest.fixture
def keras_zoo(tmp_path, monkeypatch, server, cache):
    """A catalogue with one tiny preset whose weights are a .keras file (converted on use)."""
    import shutil
    import keras
    import deeplab_keras as dk
    from deeplab_keras.hub import zoo
    keras.utils.set_random_seed(1)
    source = dk.DeepLabV3(input_shape=(33, 33, 3), **TINY)
    path = str(tmp_path / "tiny.keras")
    source.save(path)
    data = open(path, "rb").read()
    sha = server.add("/tiny.keras", data)
    root = tmp_path / "zoo"
    shutil.copytree(zoo.zoo_dir() + "/presets", root / "presets")
    preset = {"name": "tinyk", "description": "test", "architecture": "deeplabv3",
              "backbone_only": False, "config": TINY, "dataset": "test", "labels": ["a", "b", "c"],
              "palette": [[0, 0, 0], [255, 0, 0], [0, 255, 0]], "ignore_label": 255,
              "preprocessing": {"input_size": [33, 33], "resize": "align_corners"},
              "weights": [{"format": "keras_model", "url": "https://example.invalid/tiny.keras",
                           "path": None, "file": "tiny.keras", "sha256": sha, "size": len(data),
                           "default": True}],
              "metrics": {"miou": None, "split": None, "source": "test"}}
    (root / "presets" / "tinyk.json").write_text(json.dumps(preset))
    monkeypatch.setattr(zoo, "ZOO_DIRS", (str(root),))
    monkeypatch.setenv(download.MIRROR_ENV, server.url)
    return source


def test_tampered_converted_weights_are_reconverted(keras_zoo, cache, capsys):
    import h5py
    from deeplab_keras.hub import converted, zoo
    x = np.random.default_rng(0).uniform(0, 255, (1, 33, 33, 3)).astype("float32")
    expected = keras_zoo.predict(x, verbose=0)
    path, _ = converted.converted_weights("tinyk", progress=False)
    manifest = json.loads(open(converted.manifest_path(path)).read())
    assert manifest["converted_sha256"] == download.file_hash(path)
    assert manifest["source_sha256"] == download.file_hash(cache / "tiny.keras")
    with h5py.File(path, "r+") as f:  # tamper one depthwise kernel in place
        names = []
        f.visit(names.append)
        name = next(n for n in names if "depthwise" in n and isinstance(f[n], h5py.Dataset)
                    and f[n].ndim == 4)
        f[name][...] = f[name][...] * -3.0
    import deeplab_keras as dk
    model = dk.from_preset("tinyk", input_shape=(33, 33, 3), progress=False)
    assert "changed after conversion" in capsys.readouterr().err
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)
    assert converted.check_manifest(path, manifest["source_sha256"]) == (True, None)


def test_converted_weights_in_read_only_cache(keras_zoo, cache, monkeypatch, capsys):
    from deeplab_keras.hub import converted, zoo
    source, _ = zoo.fetch_weights("tinyk", progress=False)  # downloaded, verified; not converted
    read_only(cache, monkeypatch, converted, download)
    try:
        path, _ = converted.converted_weights("tinyk", progress=False)
        assert not path.startswith(str(cache)) and os.path.isfile(path)
        assert "not writable" in capsys.readouterr().err
    finally:
        os.chmod(cache, 0o755)


# ----------------------------------------------------------------------------------------------
# (6) image modes, multi-frame files, decompression bombs

def test_16bit_png_scaled_not_clipped(tmp_path):
    from PIL import Image
    from deeplab_keras.inference import load_image
    ramp = (np.arange(32 * 32, dtype=np.uint32).reshape(32, 32) * 64).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    rgb = load_image(tmp_path / "g16.png")
    assert rgb.shape == (32, 32, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.round(ramp * (255 / 65535)).astype(np.uint8))
    assert (rgb == 255).mean() < 0.01  # Image.convert("RGB") made 99% of these 255


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I", "1"])
def test_other_modes_to_rgb(tmp_path, mode):
    from PIL import Image
    from deeplab_keras.inference import load_image
    base = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), np.uint8))
    im = base.convert(mode) if mode != "I" else Image.fromarray(
        np.asarray(base.convert("L")).astype(np.int32) * 257)  # 16-bit range in an I image
    ext = "tiff" if mode in ("CMYK", "I") else "png"
    im.save(tmp_path / f"x.{ext}")
    rgb = load_image(tmp_path / f"x.{ext}")
    assert rgb.shape == (20, 30, 3) and rgb.dtype == np.uint8
    if mode in ("L", "LA", "I"):
        np.testing.assert_array_equal(rgb[..., 0], np.asarray(base.convert("L")))


def test_float_and_out_of_range_modes_refused_naming_mode(tmp_path):
    from PIL import Image
    from deeplab_keras.inference import load_image
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "f.tiff")
    with pytest.raises(ValueError, match=r"f\.tiff.*mode F"):
        load_image(tmp_path / "f.tiff")
    Image.fromarray(np.full((8, 8), -5, np.int32)).save(tmp_path / "neg.tiff")
    with pytest.raises(ValueError, match=r"mode I with values -5"):
        load_image(tmp_path / "neg.tiff")


def test_multi_frame_refused(tmp_path):
    from PIL import Image
    from deeplab_keras.inference import load_image
    frames = [Image.new("RGB", (16, 16), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ValueError, match=r"anim\.gif.*2 frames"):
        load_image(tmp_path / "anim.gif")


@pytest.mark.parametrize("limit", [1000, 3000])  # over 2x the limit: error; over 1x: warning
def test_decompression_bomb_refused(tmp_path, monkeypatch, limit):
    from PIL import Image
    from deeplab_keras.inference import load_image
    Image.new("RGB", (64, 64)).save(tmp_path / "big.png")  # 4096 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", limit)
    with pytest.raises(ValueError, match="big.png.*decompression bomb.*MAX_IMAGE_PIXELS"):
        load_image(tmp_path / "big.png")


# ----------------------------------------------------------------------------------------------
# (9) predict batches: folders, globs, bad files, name collisions

def _png(path, seed=0, size=(24, 20)):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, size[::-1] + (3,), np.uint8)).save(path)
    return str(path)


def test_predict_batch_continues_past_bad_files_and_keeps_folders(keras_zoo, tmp_path, capsys):
    from deeplab_keras.cli import main
    data = tmp_path / "data"
    _png(data / "a" / "x.png", 1)
    _png(data / "b" / "x.png", 2)          # same name, other folder
    (data / "a" / "broken.png").write_bytes(b"\x89PNG not really")  # sorted before x.png
    _png(data / "c" / "y.png", 3)
    _png(data / "c" / "y.jpg", 4)          # same stem, other extension
    single = _png(tmp_path / "single.png", 5)
    out = tmp_path / "out"
    code = main(["predict", "--preset", "tinyk", "--output", str(out), str(data),
                 str(tmp_path / "nope.png"), single])
    err = capsys.readouterr().err
    assert code == 1
    assert "2 input(s) failed" in err and "broken.png" in err and "image not found" in err
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*_classes.png"))
    assert made == ["data/a/x_classes.png", "data/b/x_classes.png", "data/c/y_jpg_classes.png",
                    "data/c/y_png_classes.png", "single_classes.png"]
    # glob patterns, and a folder alone keeps its own relative layout
    out2 = tmp_path / "out2"
    assert main(["predict", "--preset", "tinyk", "--output", str(out2),
                 str(data / "*" / "x.png")]) == 0
    assert sorted(str(p.relative_to(out2)) for p in out2.rglob("*_classes.png")) == [
        "a/x_classes.png", "b/x_classes.png"]


def test_predict_input_size_validated_before_loading(capsys):
    from deeplab_keras.cli import main
    # one --input-size parser for every command (commands/loader.py): checked before the model
    # (an unknown preset here) is loaded, one line naming the flag and what it takes
    assert main(["predict", "--preset", "nonexistent", "--output", "o", "--input-size", "0", "0",
                 "x.png"]) == 1
    assert ("--input-size takes N, H W or HxW with positive sizes, got '0 0'"
            in capsys.readouterr().err)


# ----------------------------------------------------------------------------------------------
# (8) settings validated by type and range before any work; short runs; label values

@pytest.mark.parametrize("override,message", [
    ({"batch_size": "2"}, r"setting batch_size must be an integer >= 1, got '2' \(a str\) "
                          r"\(write 2 without quotes\)"),
    ({"learning_rate": -0.5}, r"setting learning_rate must be a finite number > 0, got -0.5"),
    ({"epochs": 0}, r"setting epochs must be an integer >= 1, got 0"),
    ({"crop_size": [513]}, r"setting crop_size must be \[height, width\]"),
    ({"momentum": 1.5}, r"setting momentum must be a finite number in \[0, 1\]"),
    ({"max_scale": 0.25}, r"setting max_scale must be a finite number >= 0.75"),
    ({"optimizer": "adam"}, r"setting optimizer must be one of 'sgd', 'adamw'"),
    ({"cache": "yes"}, r"setting cache must be true or false"),
    ({"class_weights": [1, -2, 1]}, r"setting class_weights\[1\] must be a finite number >= 0"),
    ({"top_k_percent": 0}, r"setting top_k_percent must be a finite number in \(0, 100\]"),
])
def test_bad_settings_named_with_allowed_range(override, message):
    from deeplab_keras.training import make_config
    with pytest.raises(ValueError, match=message):
        make_config("camvid_deeplabv3plus_mobilenetv2", **override)


def test_cli_train_bad_setting_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    from deeplab_keras.cli import main
    from deeplab_keras.training import trainer
    monkeypatch.setattr(trainer, "build_training_model", lambda *a: pytest.fail("work started"))
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"dataset": "folder", "num_classes": 3, "batch_size": "2"}))
    assert main(["train", "--recipe", str(recipe)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "batch_size" in err and ">= 1" in err
    assert main(["train", "--recipe", "camvid_deeplabv3plus_mobilenetv2", "--set",
                 "learning_rate=-0.5"]) == 1
    assert "setting learning_rate must be a finite number > 0" in capsys.readouterr().err


def test_short_run_scales_warmup(capsys):
    from deeplab_keras.training.config import fit_warmup
    from deeplab_keras.training.schedules import PolyWarmup
    assert fit_warmup(5, 100) == 5
    scaled = fit_warmup(30, 10)  # the camvid recipe's warm-up on a 10-step run
    assert scaled == 1 and "Set warmup_steps below 10" in capsys.readouterr().err
    PolyWarmup(0.1, 10, warmup_steps=scaled)  # accepted by the schedule
    assert fit_warmup(30, 5) == 0


def _folder_dataset(root, bad_value=None):
    from PIL import Image
    rng = np.random.default_rng(0)
    for i in range(3):
        for sub in ("images", "masks"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), np.uint8)).save(root / "images" / f"{i}.png")
        mask = rng.integers(0, 3, (40, 40)).astype(np.uint8)
        if i == 1 and bad_value is not None:
            mask[5, 7] = bad_value
        Image.fromarray(mask).save(root / "masks" / f"{i}.png")
    return str(root)


def test_label_values_out_of_range_found_before_training(tmp_path, capsys):
    from deeplab_keras.cli import main
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({
        "name": "bad", "architecture": "deeplabv3", "dataset": "folder", "num_classes": 3,
        "data_root": _folder_dataset(tmp_path / "data", bad_value=7), "val_split": None,
        "model": {"backbone": "mobilenet_v2", "alpha": 0.35, "atrous_rates": [],
                  "output_stride": 16},
        "crop_size": [33, 33], "batch_size": 2, "epochs": 1, "steps_per_epoch": 1,
        "tensorboard": False, "verbose": 0, "output_dir": str(tmp_path / "run")}))
    assert main(["train", "--recipe", str(recipe)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert "1.png" in err and "[7]" in err and "0..2" in err
    assert not (tmp_path / "run" / "last.weights.h5").exists()


# ----------------------------------------------------------------------------------------------
# (7) tar bombs: only checkpoint members, bounded size and count, folder named by sha256

def test_checkpoint_tar_extracts_only_checkpoint_into_cache(tmp_path, cache):
    from deeplab_keras.importers.tf1_checkpoint import find_checkpoint
    archive = tarball(tmp_path / "m.tar.gz", [
        ("d/model.ckpt-5.index", b"i" * 10), ("d/model.ckpt-5.data-00000-of-00001", b"w" * 100),
        ("d/frozen_inference_graph.pb", bytes(5_000_000))])  # not needed: never extracted
    (tmp_path / "m.extracted").mkdir()  # a folder beside the archive is not trusted any more
    prefix = find_checkpoint(archive)
    digest = download.file_hash(archive)
    assert prefix == str(cache / "extracted" / digest[:32] / "d" / "model.ckpt-5")
    assert _files(cache / "extracted") == [f"{digest[:32]}/.deeplab_keras_source.json",
                                           f"{digest[:32]}/d/model.ckpt-5.data-00000-of-00001",
                                           f"{digest[:32]}/d/model.ckpt-5.index"]


@pytest.mark.parametrize("limits,match", [({"max_bytes": 1000}, "more than 1000 bytes"),
                                          ({"max_members": 3}, "more than 3 entries")])
def test_tar_bomb_refused_and_nothing_left(tmp_path, cache, limits, match):
    archive = tarball(tmp_path / "bomb.tar.gz", [("model.ckpt.index", b"i")] + [
        (f"model.ckpt.data-{i:05d}", bytes(400)) for i in range(4)])
    with pytest.raises(ValueError, match=match + ".*tar bomb"):
        archives.extract_checkpoint(archive, **limits)
    assert _files(cache) == [] and os.listdir(cache / "extracted") == []


def test_extracted_folder_reused_only_for_its_archive(tmp_path, cache, capsys):
    a = tarball(tmp_path / "a.tar", [("model.ckpt.index", b"from a")])
    b = tarball(tmp_path / "b.tar", [("model.ckpt.index", b"from b")])
    dest = str(tmp_path / "x")
    archives.extract_tar(a, dest, archive_sha256=download.file_hash(a))
    archives.extract_tar(b, dest, archive_sha256=download.file_hash(b))  # not a's folder
    assert "was not extracted from" in capsys.readouterr().err
    assert open(os.path.join(dest, "model.ckpt.index"), "rb").read() == b"from b"
    folder = archives.extract_checkpoint(a)
    with open(os.path.join(folder, "model.ckpt.index"), "wb") as f:
        f.write(b"stale")
    os.remove(os.path.join(folder, archives.SOURCE_MARKER))  # no marker: not trusted
    assert open(os.path.join(archives.extract_checkpoint(a), "model.ckpt.index"), "rb").read() == b"from a"


# ----------------------------------------------------------------------------------------------
# (10) leftovers of killed runs

def test_atomic_write_cleans_temp_files_of_dead_processes_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = [tmp_path / f".report.json.{dead.pid}-0a1b2c3d.tmp",
             tmp_path / f".report.json.tmp{dead.pid}.json"]
    live = tmp_path / f".report.json.{os.getppid()}-0a1b2c3d.tmp"  # a running process's
    for p in stale + [live]:
        p.write_text("half written")
    (tmp_path / "user.tmp").write_text("not ours")
    dkio.write_json(tmp_path / "report.json", {"ok": 1})
    assert sorted(os.listdir(tmp_path)) == sorted([live.name, "report.json", "user.tmp"])


def test_cli_export_bad_input_size_before_loading(tmp_path, capsys, monkeypatch):
    from deeplab_keras.cli import main
    from deeplab_keras.commands import export as export_command
    monkeypatch.setattr(export_command.loader, "load_model",
                        lambda *a, **k: pytest.fail("work started"))
    assert main(["export", "--preset", "deeplabv3plus_mobilenetv2_camvid", "--format", "tflite",
                 "--input-size", "0", "--output", str(tmp_path / "m.tflite")]) == 1
    assert "--input-size takes N, H W or HxW with positive sizes" in capsys.readouterr().err
