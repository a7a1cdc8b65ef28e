"""Issue 19 (1): we write only what we own. Export never replaces a user's report / label file
beside the artifact (even when the parity gate fails), evaluate never replaces a user's JSON or
pictures, training refuses a folder that is not a run of ours, locks it, and removes only its own
backup folder and its own dead temp files. Each case starts from a folder the test fills itself."""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from deeplab_keras import cli
from deeplab_keras.utils import io as dkio
from tests.factories import tiny_config, train_config, training_folder

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = json.dumps(tiny_config(num_classes=3))  # the CLI's --config


def _snapshot(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def tiny_model():
    import deeplab_keras as dk
    keras.utils.set_random_seed(0)
    return dk.build_model("deeplabv3", num_classes=3, backbone="mobilenet_v2", alpha=0.35,
                          atrous_rates=(), output_stride=16, labels=["a", "b", "c"])


# ----------------------------------------------------------------------------------------------
# export: the report, markdown and label file beside the artifact

@pytest.mark.parametrize("victim", ["model.json", "model.md", "model.labels.txt"])
def test_export_refuses_to_replace_a_user_file_beside_the_artifact(tiny_model, tmp_path, victim):
    from deeplab_keras.export import export_model
    (tmp_path / victim).write_text("the user's own notes")
    before = _snapshot(tmp_path)
    with pytest.raises(dkio.OutputExistsError) as err:
        export_model(tiny_model, tmp_path / "model.tflite", "tflite", input_size=33,
                     report_dir=str(tmp_path))
    text = str(err.value)
    assert victim in text and "--overwrite" in text and "\n" not in text
    assert _snapshot(tmp_path) == before  # no artifact, no report, nothing replaced


def test_export_with_failing_gate_never_replaces_user_files(tiny_model, tmp_path):
    from deeplab_keras.export import export_model
    (tmp_path / "model.md").write_text("# my model\n")
    before = _snapshot(tmp_path)
    with pytest.raises(dkio.OutputExistsError, match="model.md"):
        export_model(tiny_model, tmp_path / "model.tflite", "tflite", input_size=33,
                     report_dir=str(tmp_path), threshold=1.01)
    assert _snapshot(tmp_path) == before


def test_export_replaces_its_own_report_and_overwrite_replaces_a_users(tiny_model, tmp_path):
    from deeplab_keras.export import export_model, parity
    out = tmp_path / "model.tflite"
    with pytest.raises(parity.ParityError):  # a failed gate still writes its (own) report
        export_model(tiny_model, out, "tflite", input_size=33, report_dir=str(tmp_path),
                     threshold=1.01)
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["model.json", "model.labels.txt", "model.md"]
    assert json.loads((tmp_path / "model.json").read_text())["passed"] is False
    export_model(tiny_model, out, "tflite", input_size=33, report_dir=str(tmp_path))  # ours: replaced
    assert json.loads((tmp_path / "model.json").read_text())["passed"] is True
    (tmp_path / "model.labels.txt").write_text("cat\ndog\nbird\n")  # edited by the user
    with pytest.raises(dkio.OutputExistsError, match="model.labels.txt"):
        export_model(tiny_model, tmp_path / "model2.tflite", "tflite", input_size=33,
                     report_dir=str(tmp_path), name="model")
    export_model(tiny_model, out, "tflite", input_size=33, report_dir=str(tmp_path), overwrite=True)
    assert (tmp_path / "model.labels.txt").read_text() == "a\nb\nc\n"


def test_cli_export_refuses_before_loading_anything(tmp_path, capsys, monkeypatch):
    from deeplab_keras.commands import loader
    (tmp_path / "m.json").write_text('{"mine": true}')
    monkeypatch.setattr(loader, "load_model", lambda *a, **k: pytest.fail("model was loaded"))
    code = cli.main(["export", "--architecture", "deeplabv3", "--config", TINY, "--format",
                     "tflite", "--input-size", "33", "--output", str(tmp_path / "m.tflite")])
    err = capsys.readouterr().err
    assert code == 1 and "m.json" in err and "--overwrite" in err
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


# ----------------------------------------------------------------------------------------------
# evaluate: --output-json and the pictures beside it

def _eval_folder(tmp_path):
    rng = np.random.default_rng(0)
    for sub in ("images", "masks"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for i in range(2):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(
            tmp_path / "data" / "images" / f"{i}.png")
        Image.fromarray(rng.integers(0, 3, (24, 32), dtype=np.uint8)).save(
            tmp_path / "data" / "masks" / f"{i}.png")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((None, None, 3))
    model = keras.Model(inputs, keras.layers.Conv2D(3, 1)(inputs), name="tiny")
    model.save(tmp_path / "tiny.keras")
    out = tmp_path / "out"
    out.mkdir()
    return ["evaluate", "--weights", str(tmp_path / "tiny.keras"), "--dataset", "folder",
            "--data-root", str(tmp_path / "data"), "--num-classes", "3", "--no-progress",
            "--examples", "1", "--output-json", str(out / "results.json")], out


@pytest.mark.parametrize("victim", ["results.json", "results_example0.png", "results_confusion.png"])
def test_evaluate_refuses_to_replace_user_files(tmp_path, capsys, victim):
    argv, out = _eval_folder(tmp_path)
    if victim.endswith(".png"):
        Image.new("RGB", (4, 4), "red").save(out / victim)  # a picture of the user's
        from deeplab_keras.evaluation import plots
        if "confusion" in victim and not plots.have_matplotlib():
            pytest.skip("matplotlib absent: evaluate draws no confusion matrix")
    else:
        (out / victim).write_text('{"my": "results"}')
    before = _snapshot(out)
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    assert victim in err and "--overwrite" in err
    assert _snapshot(out) == before


def test_evaluate_replaces_its_own_outputs_and_overwrite_a_users(tmp_path, capsys):
    argv, out = _eval_folder(tmp_path)
    assert cli.main(argv) == 0
    first = sorted(os.listdir(out))
    assert "results.json" in first and "results_example0.png" in first
    assert cli.main(argv) == 0  # ours: replaced without asking
    assert sorted(os.listdir(out)) == first
    Image.new("RGB", (4, 4), "red").save(out / "results_example0.png")
    assert cli.main(argv) == 1
    assert cli.main(argv + ["--overwrite"]) == 0
    assert Image.open(out / "results_example0.png").size != (4, 4)
    capsys.readouterr()


# ----------------------------------------------------------------------------------------------
# training: the run folder

def _train_config(tmp_path, **kw):
    return train_config(tmp_path, epochs=1, steps_per_epoch=1, **kw)


@pytest.mark.parametrize("victim", ["notes.txt", "backup/chief", "config.json", "w.tmp-1"])
def test_training_refuses_a_folder_that_is_not_a_run(tmp_path, victim):
    from deeplab_keras import training
    from deeplab_keras.training import run_folder
    config = _train_config(tmp_path)
    out = tmp_path / "run"
    (out / victim).parent.mkdir(parents=True, exist_ok=True)
    (out / victim).write_text("user data")
    before = _snapshot(out)
    with pytest.raises(run_folder.RunFolderError) as err:
        training.train(config)
    assert "not a deeplab-keras run folder" in str(err.value) and "\n" not in str(err.value)
    assert _snapshot(out) == before


def test_training_cli_refuses_a_user_folder_and_says_nothing_of_resuming(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "chief").write_text("my backup")
    before = _snapshot(out)
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"architecture": "deeplabv3", "model": {"backbone": "mobilenet_v2",
                                  "alpha": 0.35, "atrous_rates": []}, "val_split": None,
                                  "crop_size": [33, 33], "batch_size": 2, "steps_per_epoch": 1}))
    code = cli.main(["train", "--recipe", str(recipe), "--dataset", "folder", "--num-classes", "3",
                     "--data-root", training_folder(tmp_path / "data"), "--epochs", "1",
                     "--output-dir", str(out)])
    captured = capsys.readouterr()
    assert code == 1 and "resuming" not in captured.out
    assert "Choose a new or empty --output-dir" in captured.err
    assert _snapshot(out) == before


def test_training_refuses_a_file_as_output_dir(tmp_path):
    from deeplab_keras import training
    from deeplab_keras.training import run_folder
    config = _train_config(tmp_path)
    (tmp_path / "run").write_text("a file")
    with pytest.raises(run_folder.RunFolderError, match="is a file"):
        training.train(config)
    assert (tmp_path / "run").read_text() == "a file"


_HOLDER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
from deeplab_keras.training import run_folder
with run_folder.claim(sys.argv[2]):
    open(sys.argv[3], "w").close()
    while not os.path.exists(sys.argv[4]):
        time.sleep(0.05)
"""


def test_second_training_into_a_running_folder_refuses_at_once(tmp_path):
    from deeplab_keras import training
    from deeplab_keras.training import run_folder
    config = _train_config(tmp_path)
    out = tmp_path / "run"
    ready, done = tmp_path / "ready", tmp_path / "done"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, REPO, str(out), str(ready), str(done)])
    try:
        while not ready.exists():
            assert holder.poll() is None, "the first run died"
            import time
            time.sleep(0.05)
        before = _snapshot(out)
        assert run_folder.MARKER in before and run_folder.LOCK in before
        with pytest.raises(run_folder.RunFolderError, match="another training run is writing"):
            training.train(config)
        assert _snapshot(out) == before  # no config.json of the failed run
    finally:
        done.touch()
        holder.wait(timeout=120)
    assert holder.returncode == 0


def test_training_removes_only_its_own_backup_and_dead_temps(tmp_path):
    from deeplab_keras import training
    from deeplab_keras.training import run_folder
    config = _train_config(tmp_path)
    out = tmp_path / "run"
    training.train(config)
    assert run_folder.is_run_folder(str(out))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    ours = out / f".last.weights.h5.{dead.pid}-0123abcd.tmp.weights.h5"  # a killed save of ours
    ours.write_bytes(b"half a file")
    (out / "backup").mkdir()
    (out / "backup" / "notes.txt").write_text("added by the user")
    (out / "w.tmp-1").write_text("not ours")
    (out / ".notes.txt.tmp-2").write_text("not ours either")
    training.train(config)  # ours: trains again in place
    assert not ours.exists() and not (out / run_folder.BACKUP).exists()
    assert (out / "backup" / "notes.txt").read_text() == "added by the user"
    assert (out / "w.tmp-1").exists() and (out / ".notes.txt.tmp-2").exists()
    assert (out / "model.keras").is_file() and (out / "config.json").is_file()


def test_run_folder_of_an_earlier_version_is_adopted_and_resumes(tmp_path):
    """A run folder written before the marker existed (our config.json, Keras's backup/) is
    ours: marked, its backup renamed so the run resumes; a look-alike config is not enough."""
    from deeplab_keras.training import run_folder
    out = tmp_path / "old_run"
    (out / "backup").mkdir(parents=True)
    (out / "backup" / "training_metadata.json").write_text('{"epoch": 2}')
    config = {"output_dir": str(out), "class_weights_used": None, "frozen_bn": 0,
              "frozen_bn_layers": []}
    (out / "config.json").write_text(json.dumps(config))
    assert run_folder.resuming(str(out))
    with run_folder.claim(str(out)):
        assert run_folder.is_run_folder(str(out))
    assert not (out / "backup").exists()
    assert (out / run_folder.BACKUP / "training_metadata.json").read_text() == '{"epoch": 2}'
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "config.json").write_text(json.dumps(config))  # names another folder: not ours
    with pytest.raises(run_folder.RunFolderError):
        run_folder.check(str(other))
