"""Issue 19, the weak cases: evaluate --artifact errors and bounded class counts, --overwrite and
system folders, leftovers of an export killed late, the export line `zoo show` prints, and a
tarball whose import fails. Each case is one-line and loses nothing."""
import os
import shlex
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import cli, download
from deeplab_keras.utils import io as dkio
from tests.factories import tarball

SIZE = 33


def _folder_dataset(root, n=2):
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (root / sub).mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(
            root / "images" / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, (SIZE, SIZE), dtype=np.uint8)).save(
            root / "masks" / f"{i}.png")
    return str(root)


def _tflite(model, path):
    import tensorflow as tf
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    import keras
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((SIZE, SIZE, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, strides=2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(10)(x))
    return _tflite(model, tmp_path_factory.mktemp("cls") / "classifier.tflite")


def _evaluate(tmp_path, artifact, *extra):
    return ["evaluate", "--artifact", str(artifact), "--dataset", "folder", "--num-classes", "3",
            "--data-root", _folder_dataset(tmp_path / "ds"), "--split", "val", "--no-progress",
            *extra]


def _one_error_line(capsys):
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    return err[0]


def test_evaluate_artifact_classifier_is_not_a_segmentation_model(classifier, tmp_path, capsys):
    assert cli.main(_evaluate(tmp_path, classifier)) == 1
    line = _one_error_line(capsys)
    assert "not a segmentation model" in line and str(classifier) in line


def test_evaluate_artifact_refuses_an_input_size(classifier, tmp_path, capsys):
    """An exported file runs at its own fixed input size: --input-size is refused, not ignored."""
    assert cli.main(_evaluate(tmp_path, classifier, "--input-size", "64")) == 1
    line = _one_error_line(capsys)
    assert "fixed input size" in line and "drop --input-size" in line


@pytest.mark.parametrize("damage", ["truncated", "garbage_after_header", "unknown_custom_op"])
def test_evaluate_artifact_runtime_errors_are_one_line(classifier, tmp_path, capsys, damage):
    data = classifier.read_bytes()
    bad = tmp_path / "bad.tflite"
    if damage == "truncated":
        bad.write_bytes(data[: len(data) // 3])
    elif damage == "garbage_after_header":
        bad.write_bytes(data[:8] + os.urandom(len(data) - 8))
    else:  # every op becomes a custom op LiteRT does not know: fails when tensors are allocated
        from deeplab_keras.importers.tflite_reader import _schema
        import flatbuffers
        schema = _schema()
        model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
        for code in model.operatorCodes:
            code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CUSTOM
            code.customCode = b"NoSuchOp"
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        bad.write_bytes(bytes(builder.Output()))
    assert cli.main(_evaluate(tmp_path, bad)) == 1
    line = _one_error_line(capsys)
    assert str(bad) in line and ("cannot load" in line or "failed running" in line)


@pytest.mark.parametrize("count", ["60000", "4097"])
def test_num_classes_bounded_before_any_allocation(tmp_path, capsys, count):
    argv = ["evaluate", "--architecture", "deeplabv3", "--config", '{"backbone": "mobilenet_v2"}',
            "--dataset", "folder", "--num-classes", count, "--data-root",
            _folder_dataset(tmp_path / "ds")]
    assert cli.main(argv) == 1
    line = _one_error_line(capsys)
    assert f"num_classes={count} is more than 4096" in line and "--num-classes" in line


def test_num_classes_bound_in_the_api():
    from deeplab_keras import data
    assert data.custom_info(4096, 4096).num_classes == 4096
    with pytest.raises(ValueError, match="more than 4096"):
        data.custom_info(4097, 255)


# ----------------------------------------------------------------------------------------------
# --overwrite never replaces system folders (nor anything inside the OS's own trees)

@pytest.mark.skipif(os.name != "posix", reason="POSIX system folders")
@pytest.mark.parametrize("path", ["/usr", "/etc", "/var", "/home", "/bin", "/usr/lib", "/etc/hosts",
                                  "/tmp", "/opt"])
def test_overwrite_refuses_system_folders(path):
    if not os.path.lexists(path):
        pytest.skip(f"{path} does not exist here")
    with pytest.raises(dkio.OutputExistsError, match="never replaced, not even with --overwrite"):
        dkio.check_replaceable(path, overwrite=True)


def test_cli_export_overwrite_usr_refused_before_loading(capsys, monkeypatch):
    from deeplab_keras.commands import loader
    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("model was loaded"))
    assert cli.main(["export", "--architecture", "deeplabv3", "--config", "{}", "--format",
                     "saved_model", "--input-size", "33", "--output", "/usr", "--overwrite"]) == 1
    assert "never replaced" in capsys.readouterr().err and os.path.isdir("/usr/bin")


def test_overwrite_still_replaces_an_ordinary_folder(tmp_path):
    target = tmp_path / "old_export"
    target.mkdir()
    (target / "x").write_text("x")
    dkio.check_replaceable(target, overwrite=True)  # no error
    with pytest.raises(dkio.OutputExistsError):
        dkio.check_replaceable(target)


# ----------------------------------------------------------------------------------------------
# an export killed late: its hidden temp is gone after the next export into that folder

def _dead_pid():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


@pytest.fixture(scope="module")
def tiny_model():
    import keras
    import deeplab_keras as dk
    keras.utils.set_random_seed(0)
    return dk.build_model("deeplabv3", num_classes=3, backbone="mobilenet_v2", alpha=0.35,
                          atrous_rates=(), output_stride=16)


def test_next_export_to_another_name_removes_a_killed_exports_temps(tiny_model, tmp_path):
    from deeplab_keras.export import export_model
    pid = _dead_pid()
    stale_file = tmp_path / f".first.tflite.deeplab-keras-{pid}.tmp.tflite"
    stale_file.write_bytes(b"half a flatbuffer")
    stale_dir = tmp_path / f".sm.deeplab-keras-{pid}.tmp"
    (stale_dir / "variables").mkdir(parents=True)
    live = tmp_path / f".other.tflite.deeplab-keras-{os.getppid()}.tmp.tflite"  # a running export
    live.write_bytes(b"being written")
    users = [tmp_path / f".notes.txt.tmp{pid}", tmp_path / "draft.tmp", tmp_path / f".a.{pid}.tmp"]
    for p in users:
        p.write_text("the user's")
    export_model(tiny_model, tmp_path / "second.tflite", "tflite", input_size=SIZE)
    assert not stale_file.exists() and not stale_dir.exists()
    assert live.exists() and all(p.exists() for p in users)


def test_killed_export_process_leaves_nothing_after_the_next_run(tiny_model, tmp_path):
    """A real export process killed with SIGKILL once its temp file appears."""
    import signal
    import time
    script = (
        "import sys\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import deeplab_keras as dk\n"
        "from deeplab_keras.export import export_model\n"
        "m = dk.build_model('deeplabv3', num_classes=3, backbone='mobilenet_v2', alpha=0.35,"
        " atrous_rates=(), output_stride=16)\n"
        "export_model(m, sys.argv[2], 'tflite', input_size=33, num_parity=64)\n")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.Popen([sys.executable, "-c", script, repo, str(tmp_path / "killed.tflite")])
    try:
        while not any(".deeplab-keras-" in n for n in os.listdir(tmp_path)):
            if proc.poll() is not None:
                pytest.fail(f"the export ended ({proc.returncode}) before its temp file appeared")
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert [n for n in os.listdir(tmp_path) if ".deeplab-keras-" in n]  # left behind by the kill
    export_model_path = tmp_path / "next.tflite"
    from deeplab_keras.export import export_model
    export_model(tiny_model, export_model_path, "tflite", input_size=SIZE)
    assert sorted(os.listdir(tmp_path)) == ["next.tflite"]


# ----------------------------------------------------------------------------------------------
# the export line of `zoo show` runs as printed

def test_zoo_show_export_command_runs_as_printed(tiny_zoo, capsys, monkeypatch):
    assert cli.main(["zoo", "show", "tiny"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()
             if line.strip().startswith("deeplab-keras export")]
    assert len(lines) == 1
    argv = shlex.split(lines[0])
    monkeypatch.chdir(tiny_zoo["tmp"])
    assert cli.main(argv[1:]) == 0, capsys.readouterr().err
    assert "parity PASS" in capsys.readouterr().out
    assert (tiny_zoo["tmp"] / "export" / "tiny.tflite").is_file()


# ----------------------------------------------------------------------------------------------
# a tarball whose import fails leaves nothing extracted

def _cache_files(cache):
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*") if p.is_file())


def test_tarball_without_index_leaves_nothing_extracted(tmp_path, cache):
    from deeplab_keras.importers.tf1_checkpoint import find_checkpoint
    archive = tarball(tmp_path / "m.tar.gz", [("d/model.ckpt-5.data-00000-of-00001", bytes(3_000_000))])
    with pytest.raises(FileNotFoundError, match="no TF checkpoint.*nothing was kept"):
        find_checkpoint(archive)
    assert _cache_files(cache) == []


def test_tarball_with_corrupt_checkpoint_leaves_nothing_extracted(tmp_path, cache):
    from deeplab_keras.importers.tf1_checkpoint import read_checkpoint
    archive = tarball(tmp_path / "m.tar.gz", [("d/model.ckpt-5.index", b"not an index" * 10),
                                               ("d/model.ckpt-5.data-00000-of-00001", bytes(1000))])
    with pytest.raises(ValueError) as err:
        read_checkpoint(archive)
    assert "not a readable TF checkpoint" in str(err.value) and "nothing was kept" in str(err.value)
    assert "\n" not in str(err.value)
    assert _cache_files(cache) == []
