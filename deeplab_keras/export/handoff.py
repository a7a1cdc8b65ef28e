"""The hand-off part of an export report, for app developers: the input tensor (name, shape, dtype,
quantization, pixel range), the output contract, the label file, and short MediaPipe snippets."""
import os

from deeplab_keras.export import gpu_compat
from deeplab_keras.utils import io

OUTPUT_CONTRACTS = {
    "classes": ("[1, H, W] int32 class index per pixel at the input size (argmax done in the "
                "graph); a second output, lowres_logits, holds the [1, h, w, C] float logits at "
                "the output stride it is upsampled from (for smoothing video over time)"),
    "logits": "[1, H, W, C] per-class logits at the input size; class = argmax over C",
    "probabilities": "[1, H, W, C] per-class softmax probabilities at the input size; class = argmax over C",
    "lowres_logits": "[1, h, w, C] logits before the final upsampling (resize to the image, then argmax)",
}


def describe(path, fmt, output_mode, labels=None):
    """The ``deploy`` entry of the report for the file at ``path`` (read back from the file)."""
    if fmt not in ("tflite", "onnx"):
        return None
    from deeplab_keras.inference.runtime import Artifact
    inp, out = Artifact(path).tensors()
    q = inp["quantization"]
    if inp["dtype"] == "int8" and q:
        inp["pixel_range"] = f"RGB 0-255 pixels as int8: value = round(pixel / {q['scale']:g}) + {q['zero_point']}"
    else:
        inp["pixel_range"] = "RGB 0-255 raw pixels (no mean/std normalisation), NHWC"
    out["contract"] = OUTPUT_CONTRACTS.get(output_mode, output_mode)
    return {"input": inp, "output": out}


def write_label_file(labels, folder, name):
    """``<name>.labels.txt`` (one class name per line, index order) beside the artifact."""
    if not labels:
        return None
    return io.write_text(os.path.join(folder, f"{name}.labels.txt"), "\n".join(labels) + "\n")


def snippets(file_name):
    base = os.path.basename(file_name)
    python = (f"from mediapipe.tasks.python import vision, BaseOptions\n"
              f"with vision.ImageSegmenter.create_from_options(vision.ImageSegmenterOptions(\n"
              f"        base_options=BaseOptions(model_asset_path=\"{base}\"), output_category_mask=True)) as seg:\n"
              f"    mask = seg.segment(mp.Image.create_from_file(\"photo.jpg\")).category_mask.numpy_view()\n"
              f"    names = seg.labels")
    kotlin = (f"val seg = ImageSegmenter.createFromOptions(context, ImageSegmenter.ImageSegmenterOptions.builder()\n"
              f"    .setBaseOptions(BaseOptions.builder().setModelAssetPath(\"{base}\").build())\n"
              f"    .setOutputCategoryMask(true).setOutputConfidenceMasks(false).build())\n"
              f"val mask = seg.segment(BitmapImageBuilder(bitmap).build()).categoryMask().get()  // MPImage, 1 byte/pixel\n"
              f"val names = seg.labels")
    return {"python": python, "kotlin": kotlin}


def to_markdown(report):
    d = report.get("deploy")
    if not d:
        return []
    lines = ["", "## For app developers", ""]
    for role in ("input", "output"):
        t = d.get(role) or {}
        lines.append(f"- {role} tensor `{t.get('name')}`: shape {t.get('shape')}, {t.get('dtype')}, "
                     f"quantization {t.get('quantization') or 'none'}")
    if d.get("input", {}).get("pixel_range"):
        lines.append(f"- input pixels: {d['input']['pixel_range']}")
    if d.get("output", {}).get("contract"):
        lines.append(f"- output contract: {d['output']['contract']}")
    lines.append(f"- label file: {d.get('label_file') or 'none (no labels given)'}")
    if d.get("standard_metadata"):
        lines.append(f"- standard TFLite metadata: {d['standard_metadata']}")
    if d.get("mediapipe"):
        lines.append(f"- MediaPipe / Task Library: {d['mediapipe']}")
    if "gpu_delegate" in d:
        lines.append(f"- TFLite GPU delegate: {gpu_compat.summary(d['gpu_delegate'])}")
    if d.get("snippets"):
        lines += ["", "MediaPipe ImageSegmenter (Python):", "", "```python", "import mediapipe as mp",
                  d["snippets"]["python"], "```", "", "Android (Kotlin, com.google.mediapipe:tasks-vision):",
                  "", "```kotlin", d["snippets"]["kotlin"], "```"]
    return lines
