"""One call per artifact, as a short chain: :func:`validate` the request into a :class:`Plan`,
:func:`convert` to a temporary file, :func:`gate` it (parity against the Keras model, report),
then :func:`publish` (``os.replace`` into place) only if it passed. The formats live in one
registry (:func:`register_format`): a new target registers its converter, its file extension,
the quantization modes it takes and its format-specific checks."""
import dataclasses
import os
import shutil
import time

import numpy as np

from deeplab_keras.export import (calibration, convert, gpu_compat, graph, handoff, mobile, ownership,
                                  parity)
from deeplab_keras.export.runtime import Artifact
from deeplab_keras.utils import io
from deeplab_keras.utils.backend import require_tensorflow
from deeplab_keras.utils.registry import Registry


@dataclasses.dataclass(frozen=True)
class Format:
    name: str
    extension: str
    convert: object  # (plan, tmp_path) -> None
    quantize_modes: tuple = ("none",)
    check: object = None  # (artifact, plan, notes) -> None: raise parity.ParityError if bad


#: format name -> :class:`Format` (a :class:`~deeplab_keras.utils.registry.Registry`, the
#: package's one registry kind)
REGISTRY = Registry("export format")


def register_format(name, extension, quantize_modes=("none",), check=None):
    """Decorator registering ``convert(plan, tmp_path)`` as export format ``name``."""
    def decorate(fn):
        REGISTRY.register(name, Format(name, extension, fn, tuple(quantize_modes), check))
        return fn
    return decorate


def _check_tflite(art, plan, notes):
    notes["input_tensor"] = f"{art.input_dtype.name}, quantization (scale, zero_point) = {art.input_quantization}"
    if art.input_dtype.kind in "iu":
        expected = (1.0, 0) if art.input_dtype == np.uint8 else (1.0, -128)
        if not np.allclose(art.input_quantization, expected):
            raise parity.ParityError(f"int8 input quantization is {art.input_quantization}, "
                                     f"not raw pixels {expected}")
    ops = set(art.tflite_ops())
    notes["ops"] = ", ".join(sorted(ops))
    if plan.gpu_delegate and ("ARG_MAX" in ops or "int64" in art.tflite_tensor_dtypes()):
        raise parity.ParityError("gpu_delegate graph still contains ARG_MAX or int64 tensors")


@register_format("saved_model", "")
def _saved_model(plan, tmp):
    convert.to_saved_model(plan.serve, tmp, plan.metadata)


@register_format("tflite", ".tflite", convert.QUANTIZE_MODES, check=_check_tflite)
def _tflite(plan, tmp):
    source = plan.serve
    if plan.quantize == "qat":
        source = graph.serving_function(plan.qat_model, plan.size, plan.output_mode, plan.gpu_delegate)
    rep = calibration.representative_dataset(plan.calibration) if plan.calibration is not None else None
    convert.to_tflite(source, tmp, plan.quantize, rep, plan.io_dtype, plan.metadata)
    # standard TFLite metadata (MediaPipe / Task Library), required by target='mediapipe'
    plan.standard_metadata = mobile.add_metadata(tmp, plan.labels, plan.output_mode, plan.name,
                                                 required=plan.target == "mediapipe",
                                                 int8_input=plan.quantize in ("int8", "qat") and plan.io_dtype == "int8")


@register_format("onnx", ".onnx", ("none", "int8"))
def _onnx(plan, tmp):
    convert.to_onnx(plan.serve, tmp, plan.opset, plan.metadata)
    if plan.quantize == "int8":  # onnxruntime static QDQ, per-channel weights
        from deeplab_keras.export import onnx_quant
        float_tmp = tmp + ".float.onnx"
        os.replace(tmp, float_tmp)
        try:
            onnx_quant.quantize_int8(float_tmp, tmp, plan.calibration)
        finally:
            _remove(float_tmp)


FORMATS = tuple(REGISTRY)
EXTENSIONS = {name: f.extension for name, f in REGISTRY.items()}


@dataclasses.dataclass
class Plan:
    """A validated export request (what :func:`validate` returns)."""
    model: object
    output: str
    format: Format
    quantize: str
    size: tuple
    output_mode: str
    serve: object
    num_classes: int
    name: str
    labels: list
    metadata: dict
    io_dtype: str = "uint8"
    gpu_delegate: bool = False
    opset: int = 17
    qat_model: object = None
    calibration: object = None
    calibration_desc: str = None
    target: str = None
    overwrite: bool = False
    standard_metadata: str = None  # status line of the standard TFLite metadata


def _temp_path(output, fmt):
    d, base = os.path.split(os.path.abspath(output))
    os.makedirs(d, exist_ok=True)  # --output in a folder that does not exist yet (issue 12)
    io.clean_stale_temps(output, whole_folder=True)  # killed exports of any name in the folder
    return os.path.join(d, f".{base}.{io.TEMP_TAG}{os.getpid()}.tmp{REGISTRY[fmt].extension}")


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.exists(path):
        os.remove(path)


def publish(tmp, output, overwrite=False):
    """Move the gated artifact ``tmp`` into place at ``output``; never replaces what is not a
    previous export of ours unless ``overwrite`` (checked again: the folder may have changed)."""
    ownership.check_output(output, overwrite)
    io.replace_path(tmp, output)


_publish = publish


def _num_classes(model):
    return int(graph.logits_model(model).outputs[0].shape[-1])


def validate(model, output, format="tflite", quantize="none", input_size=513,
             output_mode=None, io_dtype="uint8", gpu_delegate=False, opset=17, labels=None,
             name=None, qat_model=None, target=None, overwrite=False):
    """Check an export request and build its deploy graph: a :class:`Plan` (ValueError naming
    the problem otherwise)."""
    require_tensorflow(f"export (format={format!r})")
    if format not in REGISTRY:
        raise ValueError(f"format must be one of {', '.join(REGISTRY)}, got {format!r}")
    fmt = REGISTRY[format]
    if quantize not in convert.QUANTIZE_MODES:
        raise ValueError(f"quantize must be one of {', '.join(convert.QUANTIZE_MODES)}, got {quantize!r}")
    if quantize not in fmt.quantize_modes:
        raise ValueError(f"quantize={quantize!r} is for TFLite (ONNX: none or int8); {format} "
                         f"exports take {', '.join(fmt.quantize_modes)}")
    if quantize == "qat" and qat_model is None:
        raise ValueError("quantize='qat' needs qat_model (see deeplab_keras.export.qat)")
    if gpu_delegate and format != "tflite":
        raise ValueError("gpu_delegate applies to TFLite exports only")
    ownership.check_output(output, overwrite)  # refuse before any work
    if output_mode is None:  # MediaPipe needs 4-D scores
        output_mode = "logits" if target == "mediapipe" else "classes"
    if gpu_delegate and output_mode == "classes":
        output_mode = "logits"
    output_mode = mobile.check_target(target, format, output_mode, quantize, io_dtype)
    size = graph.parse_size(input_size)
    serve = graph.serving_function(model, size, output_mode, gpu_delegate)
    num_classes = _num_classes(model)
    if labels is not None and len(labels) != num_classes:
        raise ValueError(f"{len(labels)} labels given for a model with {num_classes} classes")
    metadata = {"labels": list(labels) if labels is not None else None, "output": output_mode,
                "input": {"size": list(size), "layout": "NHWC", "range": "RGB 0-255 (raw pixels)"},
                "quantize": quantize, "model": model.name}
    if serve.video_output is not None:  # the class map's second output (low-res logits)
        metadata["video_output"] = dict(serve.video_output)
    return Plan(model=model, output=os.fspath(output), format=fmt, quantize=quantize, size=size,
                output_mode=output_mode, serve=serve, num_classes=num_classes,
                name=name or os.path.splitext(os.path.basename(os.path.normpath(os.fspath(output))))[0],
                labels=labels, metadata=metadata, io_dtype=io_dtype, gpu_delegate=gpu_delegate,
                opset=opset, qat_model=qat_model, target=target, overwrite=overwrite)


def _images(plan, calibration_data, parity_data, num_calibration, num_parity):
    """Calibration images (int8/QAT) into ``plan``; returns the parity images and their description."""
    size, calib = plan.size, None
    if plan.quantize in ("int8", "qat"):
        calib, plan.calibration_desc = calibration.get_images(calibration_data, size, num_calibration)
        plan.calibration = calib
    if parity_data is not None:
        return calibration.get_images(parity_data, size, num_parity)
    if calib is not None and calibration_data is not None:
        # images after the calibration ones (not used for calibration) when the source has them
        return calibration.held_out(calibration_data, size, num_calibration, num_parity, calib)
    if calibration_data is not None:
        return calibration.get_images(calibration_data, size, num_parity)
    return calibration.get_images(None, size, num_parity, seed=1)


def _deploy(plan, tmp, check_images, metrics, threshold):
    """The app-developer hand-off of the report and, for a TFLite file with image-segmenter
    metadata, MediaPipe's ImageSegmenter run on it (its metrics go into ``metrics``). Returns
    ``(deploy, reasons the MediaPipe gate failed)``."""
    fmt = plan.format.name
    deploy, reasons = handoff.describe(tmp, fmt, plan.output_mode, plan.labels) or {}, []
    if fmt == "tflite":
        deploy["gpu_delegate"] = gpu_compat.check(tmp)
        deploy["standard_metadata"] = plan.standard_metadata
        if plan.standard_metadata is None:
            deploy["mediapipe"] = mobile.metadata.not_for_mediapipe(plan.output_mode)
        elif plan.standard_metadata.startswith("image segmenter"):
            mp = mobile.gate(tmp, plan.serve, check_images, plan.labels, plan.quantize,
                             plan.target == "mediapipe", threshold)
            if mp is not None:
                metrics.update(mp)
                reasons = [] if mp["mediapipe_passed"] else list(mp["mediapipe_reasons"])
                deploy["mediapipe"] = (f"ImageSegmenter loads it; category-mask agreement with Keras "
                                       f"{mp['mediapipe_agreement_with_keras']:.4f} on "
                                       f"{len(check_images)} parity images")
    deploy["snippets"] = handoff.snippets(plan.output) if fmt == "tflite" else None
    return deploy, reasons


def gate(plan, tmp, check_images, parity_desc, *, threshold=None, report_dir=None,
         architecture=None, extra_notes=None, convert_s=None):
    """Run the parity gate on the converted ``tmp``; returns the report (written to
    ``report_dir`` when given) or raises :class:`parity.ParityError`."""
    art = Artifact(tmp)
    notes = dict(extra_notes or {})
    if plan.format.check is not None:
        plan.format.check(art, plan, notes)
    if plan.calibration_desc:
        notes["calibration"] = plan.calibration_desc
    t1 = time.perf_counter()
    metrics = parity.compare(art, plan.serve, check_images, plan.num_classes)
    del art
    passed, reasons, thr = parity.check(metrics, plan.quantize, threshold)
    deploy, mp_reasons = _deploy(plan, tmp, check_images, metrics, threshold)
    passed, reasons = passed and not mp_reasons, reasons + mp_reasons
    size_bytes = (os.path.getsize(tmp) if os.path.isfile(tmp) else
                  sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(tmp) for f in fs))
    report = {"name": plan.name, "output": plan.output, "format": plan.format.name,
              "quantize": plan.quantize, "output_mode": plan.output_mode,
              "input_size": list(plan.size), "io_dtype": plan.io_dtype,
              "gpu_delegate": plan.gpu_delegate, "model": plan.model.name,
              "architecture": architecture, "num_classes": plan.num_classes,
              "labels_embedded": plan.labels is not None, "parity_images": parity_desc,
              "parity": metrics, "threshold": thr, "passed": passed, "reasons": reasons,
              "size_bytes": size_bytes, "convert_s": convert_s,
              "parity_s": round(time.perf_counter() - t1, 2), "notes": notes,
              "target": plan.target or plan.format.name, "deploy": deploy}
    if plan.format.name == "tflite" and plan.standard_metadata is None:
        notes["mediapipe"] = deploy["mediapipe"]
    if report_dir:  # checked again: the folder may have changed while we converted
        ownership.check_report_files(report_dir, plan.name, plan.labels, plan.overwrite)
        deploy["label_file"] = handoff.write_label_file(plan.labels, report_dir, plan.name)
        if deploy["label_file"]:  # how the next export knows the file is still ours
            deploy["label_file_sha256"] = ownership.file_sha256(deploy["label_file"])
        report["report_files"] = parity.write_report(report, report_dir, plan.name)
    if not passed:
        raise parity.ParityError(f"{plan.name}: parity gate failed ({'; '.join(reasons)}); "
                                 f"nothing written to {plan.output}")
    return report


def export_model(model, output, format="tflite", quantize="none", input_size=513,
                 output_mode=None, calibration_data=None, parity_data=None,
                 num_calibration=16, num_parity=4, io_dtype="uint8", gpu_delegate=False,
                 opset=17, labels=None, report_dir=None, name=None, threshold=None,
                 qat_model=None, architecture=None, extra_notes=None, target=None,
                 overwrite=False):
    """Export ``model`` (a deeplab_keras Keras 3 model) to ``output`` and verify it:
    :func:`validate` -> convert (the format's converter) -> :func:`gate` -> :func:`publish`.

    Args:
        format: a registered format: "saved_model", "tflite" or "onnx".
        quantize: "none", "float16", "dynamic", "int8" (post-training, calibrated on
            ``calibration_data``; for ONNX too: onnxruntime static QDQ, per-channel weights) or
            "qat" (TFLite; needs ``qat_model`` from
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
            assets.extra/deeplab_keras.json); default: the model's own ``labels``.
        architecture: for the report; default: the model's own.
        threshold: override the agreement threshold of the gate.
        target: None/"tflite", or "mediapipe": a .tflite with a 4-D score output (logits unless
            ``output_mode="probabilities"``), standard image-segmenter metadata with the labels,
            gated by MediaPipe's ImageSegmenter (see :mod:`deeplab_keras.export.mobile`).
        overwrite: replace an existing ``output`` that is not a previous export of ours
            (default: refuse with OutputExistsError before any work).
    Returns:
        the report dict (also written to ``report_dir`` as JSON + markdown when given).
    Raises:
        parity.ParityError if the artifact fails its gate (no file is left at ``output``).
    """
    if labels is None:
        own = getattr(model, "labels", None)
        labels = own if own is not None and len(own) == int(model.outputs[0].shape[-1]) else None
    architecture = architecture or getattr(model, "architecture", None)
    plan = validate(model, output, format, quantize, input_size, output_mode, io_dtype,
                    gpu_delegate, opset, labels, name, qat_model, target, overwrite)
    ownership.check_report_files(report_dir, plan.name, labels, overwrite)  # before any work
    t0 = time.perf_counter()
    check_images, parity_desc = _images(plan, calibration_data, parity_data, num_calibration,
                                        num_parity)
    tmp = _temp_path(output, plan.format.name)
    _remove(tmp)
    try:
        plan.format.convert(plan, tmp)
        report = gate(plan, tmp, check_images, parity_desc, threshold=threshold,
                      report_dir=report_dir, architecture=architecture, extra_notes=extra_notes,
                      convert_s=round(time.perf_counter() - t0, 2))
        publish(tmp, plan.output, overwrite)
        return report
    finally:
        _remove(tmp)
