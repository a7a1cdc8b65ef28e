"""Issue 12: a fast, quiet command line (no TensorFlow for --help / zoo list / zoo show),
``python -m deeplab_keras``, the zoo table and model card."""
import os
import subprocess
import sys
import time

import pytest

from deeplab_keras import cli
from deeplab_keras.hub import zoo
from deeplab_keras.commands import zoo as zoo_cmd

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _env(**extra):
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.update(extra)
    return env


_CHECK = """
import sys
from deeplab_keras.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
heavy = sorted(m for m in ("tensorflow", "keras", "tf_keras") if m in sys.modules)
print("HEAVY", heavy, "RC", rc)
"""


@pytest.mark.parametrize("argv", [["--help"], ["zoo", "list"], ["zoo", "show", "deeplabv3plus_mobilenetv2_camvid"],
                                  ["zoo", "--help"], ["predict", "--help"], ["train", "--help"]])
def test_light_commands_do_not_import_tensorflow(argv):
    out = subprocess.run([sys.executable, "-c", _CHECK, *argv], capture_output=True, text=True,
                         env=_env(), cwd=REPO, timeout=120)
    assert "HEAVY [] RC 0" in out.stdout, out.stdout[-2000:] + out.stderr[-2000:]


def test_import_deeplab_keras_is_lazy_and_attributes_still_work():
    code = ("import sys, deeplab_keras as dk; assert 'tensorflow' not in sys.modules, 'eager'; "
            "m = dk.DeepLabV3Plus; assert 'tensorflow' in sys.modules; "
            "assert callable(dk.from_preset) and callable(dk.segment) and callable(dk.overlay); "
            "print('OK', m.__name__ if hasattr(m, '__name__') else m)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                         cwd=REPO, timeout=300)
    assert out.returncode == 0 and "OK" in out.stdout, out.stderr[-3000:]


def test_unknown_attribute_is_an_attribute_error():
    import deeplab_keras as dk
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dk.nope  # noqa: B018


def test_python_dash_m_and_help_is_well_under_half_of_import_tensorflow():
    def best(cmd, n=2):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            out = subprocess.run(cmd, capture_output=True, text=True, env=_env(), cwd=REPO, timeout=300)
            times.append(time.perf_counter() - t)
            assert out.returncode == 0, out.stderr[-2000:]
        return min(times), out
    t_tf, _ = best([sys.executable, "-c", "import tensorflow"])
    t_help, out = best([sys.executable, "-m", "deeplab_keras", "--help"])
    t_list, out_list = best([sys.executable, "-m", "deeplab_keras", "zoo", "list"])
    assert "usage: deeplab-keras" in out.stdout
    assert "deeplabv3plus_mobilenetv2_camvid" in out_list.stdout
    assert t_help < 0.5 * t_tf and t_list < 0.5 * t_tf, (t_help, t_list, t_tf)


def test_no_cuinit_error_without_gpu_device_files():
    from deeplab_keras.utils.quiet import has_gpu_device_files
    if has_gpu_device_files():
        pytest.skip("this machine has NVIDIA device files: the CUDA probe is real there")
    # TensorFlow loaded by a dk.<name> attribute (issue 27: import deeplab_keras itself leaves
    # the process's TF_CPP_MIN_LOG_LEVEL alone; tests/test_house.py)
    code = ("import deeplab_keras as dk; dk.load_weights; import tensorflow as tf; "
            "print(tf.config.list_physical_devices())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_env(),
                         cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "cuInit" not in out.stderr and "oneDNN" not in out.stderr, out.stderr[-2000:]


def test_quiet_keeps_the_users_level_and_verbose_overrides(monkeypatch):
    from deeplab_keras.utils import quiet
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "1")
    quiet.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "1"
    quiet.quiet_tensorflow(verbose=True)
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    monkeypatch.delenv("TF_CPP_MIN_LOG_LEVEL")
    monkeypatch.setattr(quiet, "has_gpu_device_files", lambda: False)
    quiet.quiet_tensorflow()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "3"


def test_zoo_list_is_a_table_from_the_catalogue(capsys):
    assert cli.main(["zoo", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    header = out[0]
    for column in ("task / dataset", "classes", "input", "parameters", "multiply-adds",
                   "accuracy (split)", "file", "int8 ms"):
        assert column in header
    camvid = next(line for line in out if line.startswith("deeplabv3plus_mobilenetv2_camvid "))
    height, width = zoo.get_preset("deeplabv3plus_mobilenetv2_camvid")["preprocessing"]["input_size"]
    assert "camvid" in camvid and " 11 " in camvid and f"{height}x{width}" in camvid
    metrics = zoo.get_preset("deeplabv3plus_mobilenetv2_camvid")["metrics"]
    # trained on train+val: the figure is the recipe's train-only val score, starred and explained
    assert f"{metrics['miou']:.1f} mIoU (val)*" in camvid and "9.7 MB" in camvid
    assert any(line.startswith("* the recipe's score on a split these weights did not train on")
               for line in out)
    # recorded by bench/zoo_costs.py at the preset's input size (7.7G at 536x720)
    assert " 2.3M " in camvid and f" {metrics['macs'] / 1e9:.1f}G " in camvid
    backbone = next(line for line in out if line.startswith("resnet50_imagenet "))
    assert "backbone / imagenet" in backbone


def test_zoo_table_shows_recorded_values_and_dashes_never_invented():
    card = {"name": "x", "architecture": "deeplabv3", "config": {"num_classes": 3},
            "dataset": "d", "weights": [{"format": "keras", "file": "x.keras", "default": True,
                                         "size": 2_500_000, "path": "w/x.keras"}],
            "metrics": {"miou": 50.04, "split": "test", "params": 2_100_000, "macs": 3.2e9,
                        "int8_latency_ms": 12.34}}
    rows = zoo_cmd.table_rows(["x", "y"], lambda n: card if n == "x" else
                              dict(card, metrics={}, weights=[{"file": "y", "default": True}]))
    assert rows[1][4:] == ("2.1M", "3.2G", "50.0 mIoU (test)", "2.5 MB", "12.3")
    assert rows[2][4:] == ("-", "-", "-", "- (unpinned)", "-")


def test_zoo_show_prints_a_model_card(capsys):
    assert cli.main(["zoo", "show", "deeplabv3plus_mobilenetv2_camvid"]) == 0
    out = capsys.readouterr().out
    preset = zoo.get_preset("deeplabv3plus_mobilenetv2_camvid")
    metrics, sha = preset["metrics"], preset["weights"][0]["sha256"]
    road = metrics["per_class_iou"]["Road"]
    for text in ("licence:", "source:", f"sha256 {sha[:8]}", f"accuracy:       {metrics['miou']:.1f} mIoU (val)*",
                 "* val score of the same recipe trained on train only",
                 f"trained on:     train+val; these weights score {metrics['trained_on_val_miou']} mIoU on val, "
                 "which they trained on (not held out)",
                 "measured by:", "reproduce:",
                 f"parameters:     2.3M, multiply-adds {metrics['macs'] / 1e9:.1f}G",
                 f"(128, 64, 128)    Road  {road:.1f}", "ignore label: 11",
                 "deeplab-keras predict --preset deeplabv3plus_mobilenetv2_camvid"):
        assert text in out, text
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_zoo_show_unknown_preset_lists_the_names(capsys):
    assert cli.main(["zoo", "show", "nope"]) == 1
    err = capsys.readouterr().err
    assert "Unknown preset 'nope'" in err and "deeplabv3plus_mobilenetv2_camvid" in err


def test_filtered_stderr_drops_native_chatter_and_keeps_the_rest(capfd):
    from deeplab_keras.utils.quiet import filtered_stderr
    with filtered_stderr():
        os.write(2, b"I0000 00:00:1795299535.716432   18947 devices.cc:67] Number of GPUs: 0\n"
                    b"W0000 00:00:1795299536.344285   18947 tf_tfl_flatbuffer_helpers.cc:364] Ignored\n"
                    b"fully_quantize: 0, inference_type: 6, input_inference_type: UINT8\n"
                    b"E0000 00:00:1.2   1 x.cc:1] a real native error\n")
        print("our own message", file=sys.stderr)
    err = capfd.readouterr().err
    assert "a real native error" in err and "our own message" in err
    assert "devices.cc" not in err and "Ignored" not in err and "fully_quantize" not in err
    with filtered_stderr(enabled=False):
        os.write(2, b"I0000 00:00:1.5   1 y.cc:2] shown when verbose\n")
    assert "shown when verbose" in capfd.readouterr().err


def test_filtered_stderr_restores_stderr_when_the_block_raises(capfd):
    from deeplab_keras.utils.quiet import filtered_stderr
    with pytest.raises(RuntimeError):
        with filtered_stderr():
            os.write(2, b"Traceback-like line kept\n")
            raise RuntimeError("boom")
    os.write(2, b"after\n")
    err = capfd.readouterr().err
    assert "Traceback-like line kept" in err and "after" in err
