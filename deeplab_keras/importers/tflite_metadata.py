"""The input normalisation a TFLite file declares in its standard Model Metadata (the
``TFLITE_METADATA`` buffer MediaPipe Tasks and the TFLite Task Library read): an app feeds a
float input ``(pixel - mean) / std`` with the input tensor's ``NormalizationOptions``.

The metadata schema's Python bindings ship with MediaPipe (``pip install "deeplab-keras[mobile]"``).
Without it a file that carries metadata cannot be read here: :func:`input_normalization` warns
and says how to pass the normalisation by hand instead of guessing silently.
"""
import warnings

import numpy as np

METADATA_NAME = b"TFLITE_METADATA"
#: bounds of a sane NormalizationOptions for 0-255 pixels (1e-30 or 1e30 is a corrupt field)
MIN_STD, MAX_MEAN = 1e-6, 1e6


def _buffer(graph):
    for entry in graph.model.metadata or []:
        if entry.name == METADATA_NAME:
            data = graph.model.buffers[entry.buffer].data
            return None if data is None else bytes(np.asarray(data, np.uint8))
    return None


def input_normalization(graph):
    """``((scale, offset), how)`` with ``x * scale + offset`` the float the file's input expects
    for raw 0-255 RGB ``x``, from the metadata's NormalizationOptions; None when the file has
    no metadata or no normalisation for its input. ``scale``/``offset`` are floats or 3-arrays."""
    data = _buffer(graph)
    if data is None:
        return None
    try:
        from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    except ImportError:
        warnings.warn(f"{graph.path} declares its input normalisation in TFLite metadata, which "
                      "needs MediaPipe's schema to read (pip install \"deeplab-keras[mobile]\"); "
                      "without it the normalisation is guessed. Pass it explicitly with "
                      "preprocessing={'normalization': {'scale': 1/std, 'offset': -mean/std}}.",
                      stacklevel=3)
        return None
    try:
        model = fb.ModelMetadata.GetRootAsModelMetadata(data, 0)
        if model.SubgraphMetadataLength() < 1 or model.SubgraphMetadata(0).InputTensorMetadataLength() < 1:
            return None
        tensor = model.SubgraphMetadata(0).InputTensorMetadata(0)
        for i in range(tensor.ProcessUnitsLength()):
            unit = tensor.ProcessUnits(i)
            if unit.OptionsType() != fb.ProcessUnitOptions.NormalizationOptions:
                continue
            options = fb.NormalizationOptions()
            table = unit.Options()
            options.Init(table.Bytes, table.Pos)
            mean = np.asarray(options.MeanAsNumpy(), np.float64).reshape(-1)
            std = np.asarray(options.StdAsNumpy(), np.float64).reshape(-1)
            break
        else:
            return None
    except Exception as err:  # noqa: BLE001 - flatbuffers raises IndexError/struct.error
        raise ValueError(f"{graph.path}: unreadable TFLite metadata ({type(err).__name__}: {err})") from err
    if mean.size not in (1, 3) or std.size not in (1, 3) or not np.all(np.isfinite(mean)) \
            or not np.all(np.isfinite(std)) or np.any(np.abs(std) < MIN_STD) \
            or np.any(np.abs(mean) > MAX_MEAN):
        raise ValueError(f"{graph.path}: metadata NormalizationOptions mean {mean.tolist()} / std "
                         f"{std.tolist()}: expected 1 or 3 finite values each, |std| >= {MIN_STD} "
                         f"and |mean| <= {MAX_MEAN} (pixels are 0-255); corrupt metadata? Pass "
                         "preprocessing={'normalization': {'scale': 1/std, 'offset': -mean/std}} "
                         "by hand")
    scale, offset = 1.0 / std, -mean / std  # each 1 or 3 values (numpy broadcasts the offset)
    return ((scale[0] if scale.size == 1 else scale), (offset[0] if offset.size == 1 else offset)), \
        f"TFLite metadata NormalizationOptions (mean {mean.tolist()}, std {std.tolist()})"
