"""Issue 12(f): evaluate with pictures - a progress bar by default, a confusion-matrix heatmap and
a per-class IoU chart beside the JSON (matplotlib, skipped with a message without it) and a few
example panels (image | ground truth | prediction)."""
import json

import numpy as np
import pytest
from PIL import Image

from deeplab_keras import cli
from deeplab_keras.evaluation import plots
from tests.factories import labelled_folder as _folder, tiny_conv_model as _tiny_model


def _run(tmp_path, *extra):
    _folder(tmp_path / "data", n=3)
    _tiny_model(3).save(tmp_path / "tiny.keras")
    out = tmp_path / "res" / "camvid_val.json"
    return cli.main(["evaluate", "--weights", str(tmp_path / "tiny.keras"), "--dataset", "folder",
                     "--data-root", str(tmp_path / "data"), "--num-classes", "3",
                     "--output-json", str(out), *extra]), out


@pytest.mark.skipif(not plots.have_matplotlib(), reason="matplotlib (extra 'plots') not installed")
def test_evaluate_writes_charts_and_examples_beside_the_json(tmp_path, capsys):
    rc, out = _run(tmp_path, "--examples", "2")
    text = capsys.readouterr().out
    assert rc == 0 and "3/3" in text  # the progress bar, on by default
    folder = out.parent
    for name in ("camvid_val_confusion.png", "camvid_val_iou.png", "camvid_val_example0.png",
                 "camvid_val_example1.png"):
        assert (folder / name).is_file(), name
        assert f"wrote {folder / name}" in text
    assert not (folder / "camvid_val_example2.png").exists()
    with Image.open(folder / "camvid_val_confusion.png") as im:
        assert im.size[0] > 200 and im.size[1] > 200
    with Image.open(folder / "camvid_val_example0.png") as im:
        assert im.size[1] == 40 and im.size[0] > 3 * 48  # image | truth | prediction
        panel = np.asarray(im.convert("RGB"))
    assert (panel[:5, 48 + 2:2 * 48 + 2] == 255).all()  # ignored rows of the truth are white
    assert json.loads(out.read_text())["num_images"] == 3


def test_without_matplotlib_the_charts_are_skipped_with_a_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(plots, "have_matplotlib", lambda: False)
    rc, out = _run(tmp_path, "--no-progress")
    text = capsys.readouterr().out
    assert rc == 0 and "matplotlib is not installed" in text and "3/3" not in text
    assert not (out.parent / "camvid_val_confusion.png").exists()
    assert (out.parent / "camvid_val_example0.png").is_file()


def test_no_json_and_no_plots_dir_writes_no_pictures(tmp_path, capsys):
    _folder(tmp_path / "data", n=2)
    _tiny_model(3).save(tmp_path / "tiny.keras")
    assert cli.main(["evaluate", "--weights", str(tmp_path / "tiny.keras"), "--dataset", "folder",
                     "--data-root", str(tmp_path / "data"), "--num-classes", "3"]) == 0
    assert "wrote" not in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "tiny.keras"]
