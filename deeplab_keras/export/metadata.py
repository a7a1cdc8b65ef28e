"""Standard TFLite Model Metadata (the schema MediaPipe Tasks and the TFLite Task Library read),
written with MediaPipe's metadata writers.

What an ``ImageSegmenter`` needs and what we write:

* model name, description, version, author and licence (``ModelMetadata``);
* the input image: RGB, ``NormalizationOptions`` matching the file's real input contract (our
  graphs take raw 0-255 pixels, so mean 0 / std 1: MediaPipe feeds ``(pixel - 0) / 1``; a uint8
  input gets the raw pixels, which is the same contract) and value statistics 0..255;
* the segmentation output with the label file attached as ``TENSOR_AXIS_LABELS``;
* the segmenter options (custom metadata ``SEGMENTER_METADATA``): activation SOFTMAX for logits,
  NONE for probabilities (the category mask is the argmax either way).

MediaPipe and the Task Library need a 4-D ``[1, H, W, C]`` score output; a ``[1, H, W]`` class map
is read as H confidence masks (wrong masks, no error), so :func:`check_output` refuses it.

mediapipe 1.2.2's wheel ships the metadata writers but not the compiled
``mediapipe.tasks.cc.metadata.python._pywrap_metadata_version`` they import (a packaging gap:
``import ...metadata_writers.image_segmenter`` raises ModuleNotFoundError). :func:`_writers`
then registers a Python port of that one function (``GetMinimumMetadataParserVersion``, from
``mediapipe/tasks/cc/metadata/metadata_version.cc``: the largest schema version of the fields
present); everything else is MediaPipe's own code.
"""
import sys
import types

from deeplab_keras import version as _version

SCORE_MODES = ("logits", "probabilities")
LABEL_FILE = "labels.txt"
DEFAULT_LICENSE = "Apache-2.0"
AUTHOR = "deeplab-keras"
MEDIAPIPE_NEEDS_SCORES = (
    "MediaPipe ImageSegmenter and the TFLite Task Library need a 4-D [1, H, W, C] score output "
    "(--output-mode logits or probabilities, or --target mediapipe); this file's [1, H, W] class "
    "map is read by them as H confidence masks (wrong masks, no error). Use it with LiteRT / the "
    "TFLite Interpreter directly.")


class MetadataError(ValueError):
    """The file cannot carry image-segmenter metadata (wrong output contract, no writer)."""


# -- mediapipe 1.2.2 packaging gap -------------------------------------------------------------
_VERSIONS = {  # schema member -> first parser version (metadata_version.cc, GetMemberVersion)
    "vocabulary": (1, 0, 1), "input_process_units": (1, 1, 0), "output_process_units": (1, 1, 0),
    "bert": (1, 1, 0), "sentencepiece": (1, 1, 0), "tensor_groups": (1, 2, 0), "regex": (1, 2, 1),
    "audio": (1, 3, 0), "scann": (1, 4, 0), "file_version": (1, 4, 1), "custom_metadata": (1, 5, 0)}


def minimum_parser_version(buffer):
    """Port of MediaPipe's ``GetMinimumMetadataParserVersion`` for a ModelMetadata flatbuffer."""
    from mediapipe.tasks.metadata import metadata_schema_py_generated as fb
    md = fb.ModelMetadataT.InitFromObj(fb.ModelMetadata.GetRootAsModelMetadata(bytearray(buffer), 0))
    found = [(1, 0, 0)]

    def files(items):
        for f in items or []:
            if f.type == fb.AssociatedFileType.VOCABULARY:
                found.append(_VERSIONS["vocabulary"])
            if f.type == getattr(fb.AssociatedFileType, "SCANN_INDEX_FILE", -1):
                found.append(_VERSIONS["scann"])
            if f.version is not None:
                found.append(_VERSIONS["file_version"])

    def units(items):
        for u in items or []:
            for key, opt in (("bert", "BertTokenizerOptions"), ("sentencepiece", "SentencePieceTokenizerOptions"),
                             ("regex", "RegexTokenizerOptions")):
                if u.optionsType == getattr(fb.ProcessUnitOptions, opt, -1):
                    found.append(_VERSIONS[key])

    def tensors(items):
        for t in items or []:
            files(t.associatedFiles)
            units(t.processUnits)
            if t.content is not None and t.content.contentPropertiesType == getattr(
                    fb.ContentProperties, "AudioProperties", -1):
                found.append(_VERSIONS["audio"])

    for sg in md.subgraphMetadata or []:
        tensors(sg.inputTensorMetadata)
        tensors(sg.outputTensorMetadata)
        files(sg.associatedFiles)
        for attr, key in (("inputProcessUnits", "input_process_units"),
                          ("outputProcessUnits", "output_process_units")):
            if getattr(sg, attr, None) is not None:
                found.append(_VERSIONS[key])
                units(getattr(sg, attr))
        for attr in ("inputTensorGroups", "outputTensorGroups"):
            if getattr(sg, attr, None) is not None:
                found.append(_VERSIONS["tensor_groups"])
        if getattr(sg, "customMetadata", None) is not None:
            found.append(_VERSIONS["custom_metadata"])
    files(md.associatedFiles)
    return ".".join(str(v) for v in max(found))


def _install_version_shim():
    name = "mediapipe.tasks.cc.metadata.python._pywrap_metadata_version"
    parts = name.split(".")
    for i in range(3, len(parts)):  # mediapipe.tasks.cc, .metadata, .python
        pkg = ".".join(parts[:i])
        if pkg not in sys.modules:
            mod = types.ModuleType(pkg)
            mod.__path__ = []
            sys.modules[pkg] = mod
    shim = types.ModuleType(name)
    shim.GetMinimumMetadataParserVersion = minimum_parser_version
    shim.__doc__ = "deeplab_keras port of metadata_version.cc (missing from the mediapipe wheel)"
    sys.modules[name] = shim


def _writers():
    """MediaPipe's ``(metadata_writer, image_segmenter, metadata_info, metadata)`` modules."""
    try:
        import mediapipe  # noqa: F401
    except ImportError as err:
        raise MetadataError("standard TFLite metadata needs mediapipe: pip install "
                            "'deeplab-keras[mobile]' (or pip install mediapipe)") from err
    try:
        from mediapipe.tasks.python.metadata.metadata_writers import image_segmenter  # noqa: F401
    except ModuleNotFoundError as err:
        if "mediapipe.tasks.cc" not in str(err):
            raise
        _install_version_shim()
    from mediapipe.tasks.python.metadata import metadata
    from mediapipe.tasks.python.metadata.metadata_writers import (image_segmenter, metadata_info,
                                                                  metadata_writer)
    return metadata_writer, image_segmenter, metadata_info, metadata


def available():
    try:
        _writers()
        return True
    except (MetadataError, ImportError):
        return False


def not_for_mediapipe(output_mode):
    """Why a file with this output is not for MediaPipe / the Task Library (None if it is)."""
    if output_mode in SCORE_MODES:
        return None
    if output_mode == "classes":
        return MEDIAPIPE_NEEDS_SCORES
    return (f"output '{output_mode}' is below the input resolution; this file carries no standard "
            "metadata. For MediaPipe ImageSegmenter / the Task Library export --target mediapipe "
            "(4-D logits at the input size).")


def check_output(output_mode):
    if output_mode not in SCORE_MODES:
        raise MetadataError(f"output_mode {output_mode!r}: " + not_for_mediapipe(output_mode))


def write_segmenter_metadata(model_bytes, labels, output_mode, name, description=None,
                             version=None, license=DEFAULT_LICENSE):
    """``model_bytes`` with standard image-segmenter metadata + ``labels`` (TENSOR_AXIS_LABELS).

    Other entries of the flatbuffer's metadata table (our JSON) are kept by the populator."""
    check_output(output_mode)
    writer_mod, seg, info, _ = _writers()
    description = description or (f"DeepLab semantic segmentation ({output_mode}); input RGB "
                                  "0-255 pixels at the model's fixed size")

    class _Writer(writer_mod.MetadataWriter):
        def add_general_info(self, model_name, model_description=None):
            self._general_md = info.GeneralMd(name=model_name, version=version or _version.__version__,
                                              description=model_description, author=AUTHOR,
                                              licenses=license)
            return self

    w = _Writer(bytearray(model_bytes))
    w.add_general_info(name, description)
    # our graphs take raw pixels: (x - 0) / 1 keeps them; statistics become 0..255
    w.add_image_input([0.0], [1.0], name="image",
                      description="RGB image, raw 0-255 pixels, NHWC at the fixed input size")
    activation = seg.Activation.SOFTMAX if output_mode == "logits" else seg.Activation.NONE
    w.add_custom_metadata(seg.ImageSegmenterOptionsMd(activation))
    lab = writer_mod.Labels().add(list(labels)) if labels else None
    w.add_segmentation_output(labels=lab, name=output_mode,
                              description=f"per-class {output_mode} [1, H, W, C] at the input size")
    data, _ = w.populate()
    return bytes(data)


def read_segmenter_metadata(path_or_bytes):
    """The standard metadata as a dict (MediaPipe's JSON displayer) plus ``labels``; None when
    the file has none."""
    import json
    _, _, _, metadata = _writers()
    data = path_or_bytes
    if not isinstance(data, (bytes, bytearray)):
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    try:
        displayer = metadata.MetadataDisplayer.with_model_buffer(bytearray(data))
    except ValueError:
        return None
    out = json.loads(displayer.get_metadata_json())
    files = displayer.get_packed_associated_file_list()
    out["packed_files"] = files
    if LABEL_FILE in files:
        text = displayer.get_associated_file_buffer(LABEL_FILE).decode("utf-8")
        out["labels"] = [line for line in text.splitlines() if line]
    return out
