"""One call per artifact: build the deploy graph, convert, run the parity gate, and only then
move the file into place (temp file + ``os.replace``); the report goes to JSON + markdown."""
import os
import shutil
import time

import numpy as np

from deeplab_keras.export import calibration, convert, graph, handoff, mobile, ownership, parity
from deeplab_keras.export.runtime import Artifact
from deeplab_keras.utils import io

FORMATS = ("saved_model", "tflite", "onnx")
EXTENSIONS = {"tflite": ".tflite", "onnx": ".onnx", "saved_model": ""}


def _temp_path(output, fmt):
    d, base = os.path.split(os.path.abspath(output))
    return os.path.join(d, f".{base}.tmp{os.getpid()}{EXTENSIONS[fmt]}")


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def _publish(tmp, output, overwrite=False):
    # issue 11: never replace what we did not write (checked again: the folder may have changed)
    ownership.check_output(output, overwrite)
    io.replace_path(tmp, output)


def _num_classes(model):
    return int(graph.logits_model(model).outputs[0].shape[-1])


def export_model(model, output, format="tflite", quantize="none", input_size=513,
                 output_mode=None, calibration_data=None, parity_data=None,
                 num_calibration=16, num_parity=4, io_dtype="uint8", gpu_delegate=False,
                 opset=17, labels=None, report_dir=None, name=None, threshold=None,
                 qat_model=None, architecture=None, extra_notes=None, target=None,
                 overwrite=False):
    """Export ``model`` (a deeplab_keras Keras 3 model) to ``output`` and verify it.

    Args:
        format: "saved_model", "tflite" or "onnx".
        quantize: "none", "float16", "dynamic", "int8" (post-training, calibrated on
            ``calibration_data``; for ONNX too: onnxruntime static QDQ, per-channel weights) or
            "qat" (needs ``qat_model`` from
            :func:`deeplab_keras.export.qat.quantization_aware_model`).
        input_size: N or (H, W); the artifact has a fixed [1, H, W, 3] input.
        output_mode: "classes" (default; "logits" for target="mediapipe"), "logits",
            "probabilities" or "lowres_logits".
        calibration_data / parity_data: a folder of images, a list of files, an (N, H, W, 3)
            array, a tf.data pipeline, or None (parity falls back to the calibration images,
            then to deterministic synthetic images).
        io_dtype: "uint8" or "int8" input (and quantized output) of int8 TFLite files.
        gpu_delegate: TFLite graph for the GPU delegate (no ArgMax, no int64).
        labels: class names to embed (TFLite Model.metadata / ONNX metadata_props / SavedModel
            assets.extra/deeplab_keras.json).
        threshold: override the agreement threshold of the gate.
        overwrite: replace an existing ``output`` that is not a previous export of ours
            (default: refuse with OutputExistsError before any work).
        target: None/"tflite", or "mediapipe": a .tflite with a 4-D score output (logits unless
            ``output_mode="probabilities"``), standard image-segmenter metadata with the labels,
            gated by MediaPipe's ImageSegmenter (see :mod:`deeplab_keras.export.mobile`).
    Returns:
        the report dict (also written to ``report_dir`` as JSON + markdown when given).
    Raises:
        parity.ParityError if the artifact fails its gate (no file is left at ``output``).
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {format!r}")
    if quantize not in convert.QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(convert.QUANTIZE_MODES)}, got {quantize!r}")
    if format != "tflite" and quantize != "none" and not (format == "onnx" and quantize == "int8"):
        raise ValueError(f"quantize={quantize!r} is for TFLite (ONNX: none or int8); {format} "
                         "exports are float32")
    if quantize == "qat" and qat_model is None:
        raise ValueError("quantize='qat' needs qat_model (see deeplab_keras.export.qat)")
    if gpu_delegate and format != "tflite":
        raise ValueError("gpu_delegate applies to TFLite exports only")
    ownership.check_output(output, overwrite)  # issue 11: refuse before any work
    if output_mode is None:  # mobile (issue 10): MediaPipe needs 4-D scores
        output_mode = "logits" if target == "mediapipe" else "classes"
    if gpu_delegate and output_mode == "classes":
        output_mode = "logits"
    # -- mobile (issue 10): mediapipe target contract
    output_mode = mobile.check_target(target, format, output_mode, quantize, io_dtype)
    for_mediapipe = target == "mediapipe"
    # -- end mobile
    size = graph.parse_size(input_size)
    serve = graph.serving_function(model, size, output_mode, gpu_delegate)
    num_classes = _num_classes(model)
    if labels is not None and len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels given for a model with {num_classes} classes")
    name = name or os.path.splitext(os.path.basename(os.fspath(output)))[0]
    t0 = time.perf_counter()

    calib, calib_desc = None, None
    if quantize in ("int8", "qat"):
        calib, calib_desc = calibration.get_images(calibration_data, size, num_calibration)
    if parity_data is not None:
        check_images, parity_desc = calibration.get_images(parity_data, size, num_parity)
    elif calib is not None and calibration_data is not None:
        # images after the calibration ones (not used for calibration) when the source has them
        check_images, parity_desc = calibration.held_out(calibration_data, size, num_calibration,
                                                         num_parity, calib)
    elif calibration_data is not None:
        check_images, parity_desc = calibration.get_images(calibration_data, size, num_parity)
    else:
        check_images, parity_desc = calibration.get_images(None, size, num_parity, seed=1)

    metadata = {"labels": list(labels) if labels is not None else None, "output": output_mode,
                "input": {"size": list(size), "layout": "NHWC", "range": "RGB 0-255 (raw pixels)"},
                "quantize": quantize, "model": model.name}
    tmp = _temp_path(output, format)
    _remove(tmp)
    std_md = None  # mobile (issue 10): standard-metadata status of a TFLite file
    try:
        if format == "tflite":
            source = serve
            if quantize == "qat":
                source = graph.serving_function(qat_model, size, output_mode, gpu_delegate)
            rep = calibration.representative_dataset(calib) if calib is not None else None
            convert.to_tflite(source, tmp, quantize, rep, io_dtype, metadata)
            # -- mobile (issue 10): standard TFLite metadata (MediaPipe / Task Library)
            std_md = mobile.add_metadata(tmp, labels, output_mode, name, required=for_mediapipe)
        elif format == "onnx":
            convert.to_onnx(serve, tmp, opset, metadata)
            if quantize == "int8":  # -- mobile (issue 10): onnxruntime static QDQ, per-channel
                from deeplab_keras.export import onnx_quant
                float_tmp = tmp + ".float.onnx"
                os.replace(tmp, float_tmp)
                try:
                    onnx_quant.quantize_int8(float_tmp, tmp, calib)
                finally:
                    _remove(float_tmp)
        else:
            convert.to_saved_model(serve, tmp, metadata)
        t_convert = time.perf_counter() - t0
        art = Artifact(tmp)
        notes = dict(extra_notes or {})
        if format == "tflite":
            notes["input_tensor"] = f"{art.input_dtype.name}, quantization (scale, zero_point) = {art.input_quantization}"
            if art.input_dtype.kind in "iu":
                expected = (1.0, 0) if art.input_dtype == np.uint8 else (1.0, -128)
                if not np.allclose(art.input_quantization, expected):
                    raise parity.ParityError(f"int8 input quantization is {art.input_quantization}, "
                                             f"not raw pixels {expected}")
            ops = set(art.tflite_ops())
            notes["ops"] = ", ".join(sorted(ops))
            if gpu_delegate and ("ARG_MAX" in ops or "int64" in art.tflite_tensor_dtypes()):
                raise parity.ParityError("gpu_delegate graph still contains ARG_MAX or int64 tensors")
        if calib_desc:
            notes["calibration"] = calib_desc
        t1 = time.perf_counter()
        metrics = parity.compare(art, serve, check_images, num_classes)
        del art
        passed, reasons, thr = parity.check(metrics, quantize, threshold)
        # -- mobile (issue 10): MediaPipe ImageSegmenter gate and the app-developer hand-off
        deploy = handoff.describe(tmp, format, output_mode, labels) or {}
        if format == "tflite":
            deploy["standard_metadata"] = std_md
            if std_md is None:
                notes["mediapipe"] = deploy["mediapipe"] = mobile.metadata.not_for_mediapipe(output_mode)
            elif std_md.startswith("image segmenter"):
                mp_metrics = mobile.gate(tmp, serve, check_images, labels, quantize, for_mediapipe,
                                         threshold)
                if mp_metrics is not None:
                    metrics.update(mp_metrics)
                    passed = passed and mp_metrics["mediapipe_passed"]
                    reasons = reasons + mp_metrics["mediapipe_reasons"]
                    deploy["mediapipe"] = (f"ImageSegmenter loads it; category-mask agreement with Keras "
                                           f"{mp_metrics['mediapipe_agreement_with_keras']:.4f} on "
                                           f"{len(check_images)} parity images")
        deploy["snippets"] = handoff.snippets(output) if format == "tflite" else None
        # -- end mobile
        size_bytes = (os.path.getsize(tmp) if os.path.isfile(tmp) else
                      sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs))
        report = {"name": name, "output": os.fspath(output), "format": format, "quantize": quantize,
                  "output_mode": output_mode, "input_size": list(size), "io_dtype": io_dtype,
                  "gpu_delegate": gpu_delegate, "model": model.name, "architecture": architecture,
                  "num_classes": num_classes, "labels_embedded": labels is not None,
                  "parity_images": parity_desc, "parity": metrics, "threshold": thr,
                  "passed": passed, "reasons": reasons, "size_bytes": size_bytes,
                  "convert_s": round(t_convert, 2), "parity_s": round(time.perf_counter() - t1, 2),
                  "notes": notes, "target": target or format, "deploy": deploy}
        if report_dir:
            deploy["label_file"] = handoff.write_label_file(labels, report_dir, name)
            report["report_files"] = parity.write_report(report, report_dir, name)
        if not passed:
            raise parity.ParityError(f"{name}: parity gate failed ({'; '.join(reasons)}); "
                                     f"nothing written to {output}")
        _publish(tmp, os.fspath(output), overwrite)
        return report
    finally:
        _remove(tmp)
