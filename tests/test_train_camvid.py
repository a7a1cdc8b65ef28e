"""The shipped CamVid preset (trained by bench/train_camvid.py) still segments real CamVid val
images as measured: checks a few images against their ground truth."""
import os

import numpy as np
import pytest

CAMVID = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "camvid")


@pytest.mark.skipif(not os.path.isdir(CAMVID), reason="../shared/data/camvid (real CamVid) not present")
def test_camvid_preset_on_real_val_images():
    import deeplab_keras as dk
    from deeplab_keras import data
    preset = dk.get_preset("deeplabv3plus_mobilenetv2_camvid")
    assert preset["metrics"]["miou"] > 60.1  # SegNet, as published
    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
    pairs = data.list_pairs("camvid", CAMVID, "val")[::25]  # 5 images
    from deeplab_keras.evaluation.metrics import confusion_matrix, metrics_from_confusion
    cm = np.zeros((11, 11), np.int64)
    for x, y in data.make_dataset(pairs, dataset_info="camvid", batch_size=5):
        pred = np.argmax(model.predict_on_batch(x), -1)
        cm += confusion_matrix(y.numpy(), pred, 11, ignore_label=11)
    assert np.trace(cm) / cm.sum() > 0.85  # pixel accuracy (91.3% over all 101 val images)
    iou = np.nan_to_num(np.array(metrics_from_confusion(cm)["per_class_iou"]))
    assert iou[[0, 3, 8]].min() > 0.7  # sky, road, car


def _train_camvid():
    import importlib.util
    path = os.path.join(os.path.dirname(__file__), "..", "bench", "train_camvid.py")
    spec = importlib.util.spec_from_file_location("train_camvid_bench", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _result(split, miou, **config):
    cfg = {"train_split": split, "val_split": "val", "epochs": 12, "crop_size": [360, 480],
           "output_dir": f"runs/{split}", "minutes": 100, "init_weights": None}
    cfg.update(config)
    final = {"miou": miou, "per_class_iou": {"Sky": miou}, "weights": "w.h5"}
    return {"command": f"python bench/train_camvid.py --set train_split={split}", "config": cfg,
            "final": final, "last": final}


def test_publish_of_a_train_plus_val_run_reports_the_held_out_recipe_figure():
    """A model trained on val cannot score itself there: the preset's headline comes from the
    train-only run of the same recipe and the trained-on val figure is marked as such."""
    tc = _train_camvid()
    shipped = _result("train+val", 81.0, val_split=None, output_dir="runs/tv", minutes=200)
    evidence = _result("train", 67.2)
    m = tc.metrics_block(shipped, evidence)
    assert m["miou"] == 67.2 and m["split"] == "val" and m["trained_on"] == "train+val"
    assert m["trained_on_val_miou"] == 81.0 and "NOT held out" in m["trained_on_source"]
    assert "train_split=train " in m["source"] + " "  # the evidence run's command
    with pytest.raises(ValueError, match="--evidence RUN_DIR"):
        tc.metrics_block(shipped)
    with pytest.raises(ValueError, match=r"differs .* epochs \(12 vs 20\)"):
        tc.metrics_block(dict(shipped, config=dict(shipped["config"], epochs=20)), evidence)
    with pytest.raises(ValueError, match="not held out"):
        tc.metrics_block(shipped, _result("train+val", 80.0))
    assert tc.metrics_block(evidence)["miou"] == 67.2  # a train-only run is its own evidence


def test_publish_carries_the_evidence_runs_scales_and_flip_figure():
    """An evidence run evaluated with --tta gives the preset its scales + flip figure; a run that
    also tracked a moving average (ema_momentum) is the same recipe for its final weights."""
    tc = _train_camvid()
    shipped = _result("train+val", 81.0, val_split=None, output_dir="runs/tv", minutes=200)
    evidence = _result("train", 71.1, ema_momentum=0.999, validation_freq=3)
    evidence["final_scales_flip"] = {"miou": 74.256, "scales": [0.75, 1.0, 1.25, 1.5], "flip": True,
                                     "per_class_iou": {"Sky": 75.0}}
    m = tc.metrics_block(shipped, evidence)
    assert m["miou"] == 71.1 and m["miou_scales_flip"] == 74.26
    assert m["scales_flip"]["flip"] and m["scales_flip"]["scales"] == [0.75, 1.0, 1.25, 1.5]
    assert "train_split=train " in m["scales_flip"]["source"] + " " and "+ flip" in m["scales_flip"]["source"]
    assert "miou_scales_flip" not in tc.metrics_block(shipped, _result("train", 71.1))
    with pytest.raises(ValueError, match="weight_decay"):  # a setting that changes training still counts
        tc.metrics_block(shipped, _result("train", 71.1, weight_decay=0.1))


def test_publish_at_a_working_size_reports_the_figures_measured_there():
    """--input-size: the preset works at another size than the images' (what predict runs); its
    figures must be the evidence run's at that size, or publishing is refused."""
    tc = _train_camvid()
    shipped = _result("train+val", 81.0, val_split=None, output_dir="runs/tv", minutes=200)
    evidence = _result("train", 70.7)
    evidence["final_scales_flip"] = {"miou": 74.1, "scales": [0.75, 1.0, 1.25, 1.5], "flip": True,
                                     "per_class_iou": {"Sky": 75.0}}
    with pytest.raises(ValueError, match="--eval-only --tta --input-size 536 720"):
        tc.metrics_block(shipped, evidence, (536, 720))
    evidence["at_input_size"] = {"536x720": {
        "single": {"miou": 73.6, "per_class_iou": {"Sky": 94.5}},
        "scales_flip": {"miou": 75.55, "scales": [0.75, 1.0, 1.25, 1.5], "flip": True,
                        "per_class_iou": {"Sky": 95.0}}}}
    m = tc.metrics_block(shipped, evidence, (536, 720))
    assert m["miou"] == 73.6 and m["miou_scales_flip"] == 75.55 and m["trained_on_val_miou"] == 81.0
    assert "model run at 536x720" in m["source"] and "model run at 536x720" in m["scales_flip"]["source"]
    same = tc.metrics_block(shipped, evidence, (360, 480))  # the images' own size: as before
    assert same["miou"] == 70.7 and same["miou_scales_flip"] == 74.1 and "model run" not in same["source"]


def test_ablation_table_shows_averages_and_scales_flip(tmp_path):
    """bench/camvid_ablation.py: a run evaluated with --snapshots/--tta gets rows for its final
    weights, the moving average and each stochastic weight average, with deltas; a train+val
    run is refused (its val score is not held out)."""
    import json
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    import camvid_ablation
    run = _result("train", 71.0, ema_momentum=0.999)
    run.update(epochs_done=24, train_seconds_total=4500, train_images_per_sec=2.3,
               final_scales_flip={"miou": 74.0}, ema={"miou": 71.5}, ema_scales_flip={"miou": 74.2},
               swa_4={"miou": 70.5}, swa_12={"miou": 70.0}, swa_4_scales_flip={"miou": 73.0})
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "result.json").write_text(json.dumps(run))
    out = tmp_path / "table.md"
    assert camvid_ablation.main([str(tmp_path / "a"), "--output", str(out)]) == 0
    text = out.read_text()
    assert "| a | final | 71.00 | +0.00 | 74.00 | +0.00 |" in text
    assert "| a | ema | 71.50 | +0.50 | 74.20 | +0.20 |" in text
    assert text.index("| a | swa_4 | 70.50 | -0.50 | 73.00 | -1.00 |") < text.index("| a | swa_12 | 70.00 | -1.00 | - | |")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "result.json").write_text(json.dumps(_result("train+val", 80.0)))
    with pytest.raises(SystemExit, match="not held out"):
        camvid_ablation.main([str(tmp_path / "b"), "--output", str(out)])


def test_evidence_made_before_a_setting_existed_reads_it_as_its_default():
    """A run recorded before a setting was added (no crop_jitter in its config) is the same
    recipe as a new run with that setting at its default; at another value it differs."""
    tc = _train_camvid()
    shipped = _result("train+val", 81.0, val_split=None, output_dir="runs/tv", minutes=200, crop_jitter=0)
    assert tc.metrics_block(shipped, _result("train", 70.7))["miou"] == 70.7
    with pytest.raises(ValueError, match=r"crop_jitter \(0 vs 16\)"):
        tc.metrics_block(dict(shipped, config=dict(shipped["config"], crop_jitter=16)), _result("train", 70.7))


def test_holdout_is_checked_and_each_figure_names_its_split():
    """A hold-out of train (val_split train-only:SEQ) is refused when it shares images with the
    training split or reads val; the printed figures say which split each is on."""
    tc = _train_camvid()
    config = {"train_split": "train-minus:0006R0", "val_split": "train-only:0006R0"}
    assert tc.holdout_split(config) == "train-only:0006R0"
    assert tc.holdout_split(dict(config, val_split="val")) is None
    assert tc.holdout_split(dict(config, val_split=None)) is None
    a, b = [("/d/train/0006R0_1.png", "m")], [("/d/train/0001TP_1.png", "m")]
    tc.check_holdout(config, a, b)
    with pytest.raises(ValueError, match=r"^val_split 'train-only:0006R0' shares 1 images with train_split "
                                         r"'train': it is not held out"):
        tc.check_holdout(dict(config, train_split="train"), a, a + b)
    with pytest.raises(ValueError, match="reads val: val is the reported check"):
        tc.check_holdout(dict(config, val_split="val-only:0016E5"), a, b)
    assert tc.trains_on_val({"train_split": "train-minus:0006R0+val"})
    assert not tc.trains_on_val({"train_split": "train-minus:0006R0"})
    result = _result("train-minus:0006R0", 70.0, val_split="train-only:0006R0")
    result["final"]["images"] = 101
    result["at_input_size"] = {"536x720": {"single": {"miou": 72.5}}}
    result["holdout"] = {"split": "train-only:0006R0", "images": 101, "final": {"miou": 60.0},
                         "at_input_size": {"536x720": {"single": {"miou": 61.25}}}}
    assert tc.figure_lines(result) == [
        "final on train-only:0006R0 (101 images, hold-out of train, where settings are chosen), "
        "360x480 single scale: mIoU 60.00",
        "final on train-only:0006R0 (101 images, hold-out of train, where settings are chosen), "
        "536x720 single scale: mIoU 61.25",
        "final on val (101 images, held out, the reported check), 360x480 single scale: mIoU 70.00",
        "final on val (101 images, held out, the reported check), 536x720 single scale: mIoU 72.50"]


def test_ablation_rows_are_recipes_with_a_holdout_and_one_command_each(tmp_path, capsys):
    """Each hold-out ablation row is a recipe in zoo/recipes: the baseline with one lever, trained
    without sequence 0006R0 and validated on it (never on val); --plan prints one command per
    row, and the table shows hold-out and val figures side by side."""
    import json
    import sys
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "bench"))
    import camvid_ablation
    from deeplab_keras.training import make_config
    base = make_config("camvid_ablation_baseline")
    shipped = make_config("camvid_deeplabv3plus_mobilenetv2_trainval")
    tc = _train_camvid()
    assert base["train_split"] == "train-minus:0006R0" and base["val_split"] == "train-only:0006R0"
    assert not tc.trains_on_val(base)
    assert {k for k in base if base[k] != shipped[k]} == {"name", "output_dir", "train_split", "val_split",
                                                          "validation_freq"}
    changed = {}
    for name, (recipe, _) in camvid_ablation.ROWS.items():
        config = make_config(recipe)
        assert config["val_split"] == base["val_split"] and config["train_split"] == base["train_split"]
        changed[name] = {k: config[k] for k in config if config[k] != base[k] and k not in ("name", "output_dir")}
    assert changed == {"baseline": {}, "crop_jitter": {"crop_jitter": 16},
                       "crop536": {"crop_size": [536, 720], "min_scale": 0.75, "max_scale": 3.0},
                       "topk": {"top_k_percent": 25.0}, "36ep": {"epochs": 36},
                       "focus": {"crop_focus_classes": ["Pole", "SignSymbol", "Fence", "Pedestrian", "Bicyclist"]}}
    # the working-size crop keeps the preset's alignment to the stride-16 grid
    assert [v % 16 for v in changed["crop536"]["crop_size"]] == [v % 16 for v in base["crop_size"]]
    assert camvid_ablation.main(["--plan"]) == 0
    plan = [l for l in capsys.readouterr().out.splitlines() if l.startswith("python")]
    assert len(plan) == len(camvid_ablation.ROWS)
    assert "--recipe camvid_ablation_crop536 --output-dir runs/camvid_ablation_crop536" in plan[2]
    run = _result("train-minus:0006R0", 70.0, val_split="train-only:0006R0", crop_jitter=16)
    run.update(epochs_done=24, train_seconds_total=3600, train_images_per_sec=1.8,
               at_input_size={"536x720": {"single": {"miou": 72.5}}},
               holdout={"split": "train-only:0006R0", "images": 101, "final": {"miou": 60.0}})
    (tmp_path / "runs" / "camvid_ablation_crop_jitter").mkdir(parents=True)
    (tmp_path / "runs" / "camvid_ablation_crop_jitter" / "result.json").write_text(json.dumps(run))
    out = tmp_path / "table.md"
    assert camvid_ablation.main(["--collect", "--runs-dir", str(tmp_path / "runs"), "--output", str(out)]) == 0
    assert ("| camvid_ablation_crop_jitter | train-only:0006R0 | 60.00 | - | 70.00 | 72.50 | [360, 480] None-None "
            "| 16 | 100 | - | 24/12 | 60 | 1.80 |") in out.read_text()
