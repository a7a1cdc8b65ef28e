"""The ``mediapipe`` export target and the mobile steps of every TFLite export, called by
:func:`deeplab_keras.export.api.export_model`:

* ``check_target``: ``target="mediapipe"`` means a TFLite file with a 4-D score output (logits by
  default), uint8 input when quantized, and standard metadata - refused otherwise, with the fix;
* ``add_metadata``: standard image-segmenter metadata (:mod:`.metadata`) on any TFLite file whose
  output MediaPipe can read (required for the mediapipe target, best effort otherwise);
* ``gate``: MediaPipe's ImageSegmenter run on the file (:mod:`.mediapipe_gate`) whenever the file
  has that metadata and mediapipe is installed.
"""
from deeplab_keras.export import mediapipe_gate, metadata

TARGETS = ("tflite", "mediapipe")


def check_target(target, format, output_mode, quantize, io_dtype):
    """The output mode to use; raises ValueError/MetadataError for a contract MediaPipe cannot run."""
    if target is None:
        return output_mode
    if target not in TARGETS:
        raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "tflite":
        if format != "tflite":
            raise ValueError(f"target 'tflite' needs format 'tflite', got {format!r}")
        return output_mode
    if format != "tflite":
        raise ValueError(f"target 'mediapipe' writes a .tflite file; got format {format!r}")
    metadata.check_output(output_mode)
    if quantize in ("int8", "qat") and io_dtype != "uint8":
        raise ValueError("MediaPipe feeds uint8 or float32 images: use io_dtype 'uint8' for the mediapipe target")
    if not metadata.available():
        raise metadata.MetadataError("target 'mediapipe' needs mediapipe's metadata writers: "
                                     "pip install 'deeplab-keras[mobile]'")
    return output_mode


def add_metadata(path, labels, output_mode, name, required, int8_input=False):
    """Rewrite the .tflite at ``path`` with standard metadata. Returns a status line for the
    report, or raises when ``required`` and it cannot be written."""
    if output_mode not in metadata.SCORE_MODES:
        if required:
            metadata.check_output(output_mode)
        return None
    if int8_input:  # check_target refuses this for the mediapipe target
        return ("not written (int8 input: MediaPipe and the Task Library feed uint8 or float32 "
                "images; export with io_dtype 'uint8' for them)")
    if not metadata.available():
        if required:
            raise metadata.MetadataError("standard metadata needs mediapipe: pip install 'deeplab-keras[mobile]'")
        return "not written (mediapipe not installed: pip install 'deeplab-keras[mobile]')"
    with open(path, "rb") as f:
        data = f.read()
    data = metadata.write_segmenter_metadata(data, labels, output_mode, name)
    with open(path, "wb") as f:  # the caller's temporary file, published only after the gates
        f.write(data)
    return (f"image segmenter: RGB input, NormalizationOptions mean 0 std 1 (raw 0-255 pixels), "
            f"output '{output_mode}'" + (f", labels as TENSOR_AXIS_LABELS ({metadata.LABEL_FILE})" if labels
                                         else ", no labels given"))


def gate(path, serve, images, labels, quantize, required, threshold=None):
    """MediaPipe ImageSegmenter metrics on ``path`` or None when it cannot run here;
    ``threshold`` (the caller's override of the agreement gate) applies to it too."""
    if not mediapipe_gate.available():
        if required:
            raise metadata.MetadataError("the mediapipe target's gate needs mediapipe installed")
        return None
    return mediapipe_gate.compare(path, serve, images, labels=labels, quantize=quantize,
                                  threshold=threshold)
