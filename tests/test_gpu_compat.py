"""Issue 28 item 5: export reports, per TFLite file, whether TFLite's GPU delegate can run every
op (the TFLite analyzer's GPU check + the delegate's op list), in the JSON and the markdown."""
import json

import pytest

from deeplab_keras.export import export_model, gpu_compat

from factories import LABELS

SIZE = 33  # small: each export takes a few seconds


@pytest.fixture(scope="module")
def tiny(tiny_keras):
    return tiny_keras["model"]


def _entry(report_dir, name):
    with open(report_dir / f"{name}.json") as f:
        saved = json.load(f)
    with open(report_dir / f"{name}.md") as f:
        md = [line for line in f.read().splitlines() if line.startswith("- TFLite GPU delegate: ")]
    return saved["deploy"]["gpu_delegate"], md


def test_class_map_export_reports_arg_max_as_gpu_incompatible(tiny, tmp_path):
    r = export_model(tiny, tmp_path / "classes.tflite", "tflite", "none", SIZE,
                     output_mode="classes", labels=LABELS, report_dir=tmp_path)
    entry, md = _entry(tmp_path, "classes")
    assert entry == json.loads(json.dumps(r["deploy"]["gpu_delegate"]))
    assert entry["compatible"] is False and entry["ops_checked"] > 10
    bad = [b for b in entry["incompatible_ops"] if b["op"] == "ARG_MAX"]
    assert len(bad) == 1 and bad[0]["reason"] == "Not supported op ARG_MAX"
    assert bad[0]["node"].startswith("Subgraph#0 Op#")
    assert {b["op"] for b in entry["incompatible_ops"]} == {"ARG_MAX"}  # the rest of DeepLab runs
    assert len(md) == 1 and "NOT every op" in md[0] and "ARG_MAX" in md[0]


@pytest.mark.parametrize("kind", ["logits", "mediapipe", "gpu_delegate"])
def test_score_outputs_and_the_mediapipe_target_pass_the_gpu_check(tiny, tmp_path, kind):
    if kind == "mediapipe":
        pytest.importorskip("mediapipe", reason="the [mobile] extra (mediapipe) is not installed")
    # gpu_delegate=True: the export option that drops the argmax from a classes request
    r = export_model(tiny, tmp_path / f"{kind}.tflite", "tflite", "none", SIZE,
                     output_mode="classes" if kind == "gpu_delegate" else "logits",
                     labels=LABELS, report_dir=tmp_path, gpu_delegate=kind == "gpu_delegate",
                     target="mediapipe" if kind == "mediapipe" else None)
    entry, md = _entry(tmp_path, kind)
    assert r["target"] == ("mediapipe" if kind == "mediapipe" else "tflite")
    assert entry["incompatible_ops"] == [] and entry["compatible"] is True, entry
    assert entry["ops_checked"] > 10
    assert len(md) == 1 and md[0].endswith(f"every op can run on TFLite's GPU delegate "
                                           f"({entry['ops_checked']} ops checked)")


# the analyzer's dump as tensorflow/lite/tools/model_analyzer prints it when its GPU checker is
# linked in (the TF 2.20 wheel's is not: it prints "looks compatible" for any graph)
FLAGGED = """=== TFLite ModelAnalyzer ===

Subgraph#0 main(T#0) -> [T#3]
  Op#0 CONV_2D(T#0, T#1, T#2) -> [T#4]
  Op#1 CONV_2D(T#4, T#1, T#2) -> [T#5]
GPU COMPATIBILITY WARNING: Dilation in width and height must be equal.
  Op#2 ARG_MAX(T#5, T#6[-1]) -> [T#3]
GPU COMPATIBILITY WARNING: Not supported op ARG_MAX

GPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 1, 2 with TFLite runtime version 2.20.0

Tensors of Subgraph#0
  T#0(serving_default_input:0) shape:[1, 33, 33, 3], type:FLOAT32
"""


def test_parse_attaches_each_analyzer_warning_to_its_op():
    ops, warnings = gpu_compat.parse(FLAGGED)
    assert ops == [(0, 0, "CONV_2D"), (0, 1, "CONV_2D"), (0, 2, "ARG_MAX")]
    assert warnings == {(0, 1): "Dilation in width and height must be equal.",
                        (0, 2): "Not supported op ARG_MAX"}


def test_check_reports_analyzer_warnings_on_ops_the_op_list_allows(monkeypatch):
    monkeypatch.setattr(gpu_compat, "analyzer_text", lambda content: FLAGGED)
    entry = gpu_compat.check(model_content=b"unused")
    assert entry["compatible"] is False and entry["analyzer_verdict"] == "incompatible"
    assert [(b["op"], b["source"]) for b in entry["incompatible_ops"]] == [
        ("CONV_2D", "analyzer"), ("ARG_MAX", "analyzer")]
    assert "CONV_2D" in gpu_compat.summary(entry) and "ARG_MAX" in gpu_compat.summary(entry)
