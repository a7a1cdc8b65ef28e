"""The preset schema: one typed entry per preset (like torchvision's weights entries), validated
when the catalogue is read, shared by the catalogue (:mod:`deeplab_keras.hub.zoo`), training recipes
(their ``architecture`` + ``model`` are a preset's ``architecture`` + ``config``) and the bench
publisher (``bench/train_camvid.py``).

Labels, palette and ignore label live in one place, :data:`deeplab_keras.data.DATASETS`: a preset
of a known dataset takes them from there (a preset file that repeats them must agree); presets of
other data carry their own.
"""
import dataclasses
import inspect
import re

from deeplab_keras.data.datasets import DATASETS

# The model registry, backbones and weight formats load TensorFlow: imported where the checks use
# them, so dataset_metadata() (``zoo list``/``zoo show``) runs without it.

#: ``preprocessing.normalization`` -> how the backbone's in-graph preprocessing normalises
NORMALIZATIONS = {"zero_mean_unit_range": "scale_offset", "mean_subtraction": "mean"}
RESIZES = ("align_corners", "half_pixel", "asymmetric")  # asymmetric: TF1 legacy bilinear (MLPerf file)


class PresetError(ValueError):
    """A preset entry that does not follow the schema (the message names the field)."""


@dataclasses.dataclass(frozen=True)
class WeightsEntry:
    format: str
    file: str
    url: str = None
    path: str = None
    sha256: str = None
    md5: str = None
    size: int = None
    default: bool = False

    def check(self, where):
        from deeplab_keras.importers.formats import FORMATS
        if self.format not in FORMATS:
            raise PresetError(f"{where}: weights format {self.format!r} is not one of {', '.join(FORMATS)}")
        if not (self.url or self.path):
            raise PresetError(f"{where}: a weights entry needs 'url' or 'path'")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise PresetError(f"{where}: sha256 must be 64 lowercase hex digits, got {self.sha256!r}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 1):
            raise PresetError(f"{where}: size must be a positive number of bytes, got {self.size!r}")


def model_spec(entry):
    """``(architecture, builder arguments)`` of a preset (``config``) or a training recipe
    (``model``): the one place that knows both spellings."""
    if "config" in entry:
        return entry["architecture"], dict(entry["config"] or {})
    return entry["architecture"], dict(entry.get("model") or {})


def _backbone(architecture, config):
    from deeplab_keras.models import BUILDERS
    if "backbone" in config:
        return config["backbone"]
    default = inspect.signature(BUILDERS[architecture]).parameters.get("backbone")
    return default.default if default is not None else "vgg16"  # DeepLabV1 is VGG-16 only


@dataclasses.dataclass(frozen=True)
class Preset:
    name: str
    architecture: str
    config: dict
    weights: tuple
    description: str = ""
    backbone_only: bool = False
    dataset: str = None
    labels: list = None
    palette: list = None
    ignore_label: int = None
    preprocessing: dict = None
    metrics: dict = None

    @classmethod
    def from_dict(cls, entry, where=None):
        """Validate a preset dict (a catalogue JSON, a bench result) into a :class:`Preset`."""
        where = where or f"preset {entry.get('name')!r}"
        if not isinstance(entry, dict):
            raise PresetError(f"{where}: a preset is a JSON object")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(entry) - fields - {"_comment"})
        if unknown:
            raise PresetError(f"{where}: unknown fields {unknown} (known: {sorted(fields)})")
        missing = [k for k in ("name", "architecture", "config", "weights") if k not in entry]
        if missing:
            raise PresetError(f"{where}: missing fields {missing}")
        from deeplab_keras.models import canonical
        try:
            architecture = canonical(entry["architecture"])
        except ValueError as err:
            raise PresetError(f"{where}: {err}") from None
        config = dict(entry["config"] or {})
        if not isinstance(entry["weights"], list) or not entry["weights"]:
            raise PresetError(f"{where}: 'weights' must be a non-empty list")
        weights = []
        for i, w in enumerate(entry["weights"]):
            try:
                weights.append(WeightsEntry(**w))
            except TypeError as err:
                raise PresetError(f"{where}: weights[{i}]: {err}") from None
            weights[-1].check(f"{where}: weights[{i}]")
        if sum(bool(w.default) for w in weights) != 1:
            raise PresetError(f"{where}: exactly one weights entry must have \"default\": true")
        values = dict(entry, architecture=architecture, config=config, weights=tuple(weights))
        values.pop("_comment", None)
        values = dataset_metadata(values, where)
        _check_head(values, where)
        _check_preprocessing(values, where)
        return cls(**values)

    def to_dict(self):
        """The plain dict of the catalogue (what :func:`deeplab_keras.get_preset` returns)."""
        out = dataclasses.asdict(self)
        out["weights"] = [dataclasses.asdict(w) for w in self.weights]
        for w in out["weights"]:
            if w["md5"] is None:
                del w["md5"]
        return out


def dataset_metadata(values, where):
    """Labels, palette and ignore label of a known dataset come from data.DATASETS."""
    info = DATASETS.get(values.get("dataset"))
    classes = values["config"].get("num_classes")
    if info is None or values.get("backbone_only") or classes != info.num_classes:
        return values
    own = {"labels": list(info.labels), "palette": [list(c) for c in info.palette],
           "ignore_label": info.ignore_label}
    for key, value in own.items():
        given = values.get(key)
        if given is not None and given != value:
            raise PresetError(f"{where}: {key} differ from data.DATASETS[{info.name!r}]; the "
                              f"dataset's are the only copy: drop '{key}' from the preset")
        values[key] = value
    return values


def _check_head(values, where):
    classes = values["config"].get("num_classes")
    if values.get("backbone_only"):
        if classes is not None:
            raise PresetError(f"{where}: a backbone preset has no num_classes (it is given at use)")
        return
    if not isinstance(classes, int) or classes < 1:
        raise PresetError(f"{where}: config.num_classes must be a positive integer")
    for key in ("labels", "palette"):
        if values.get(key) is None:
            raise PresetError(f"{where}: {key} must list {classes} entries (or come from a known "
                              "dataset)")
    _check_metadata(values, where, classes)


def _check_metadata(values, where, classes):
    """The model's own metadata check (:func:`deeplab_keras.models.deeplab.check_metadata`), so
    that a preset and the model built from it follow one rule."""
    from deeplab_keras.models.deeplab import check_metadata
    try:
        check_metadata(classes, values.get("labels"), values.get("palette"),
                       values.get("ignore_label"), values.get("preprocessing"))
    except ValueError as err:
        raise PresetError(f"{where}: {err}") from None


def _check_preprocessing(values, where):
    prep = values.get("preprocessing")
    if prep is None:
        return
    unknown = sorted(set(prep) - {"input_size", "normalization", "resize"})
    if unknown:
        raise PresetError(f"{where}: unknown preprocessing fields {unknown}")
    if values.get("backbone_only"):  # heads are checked with their metadata in _check_head
        _check_metadata({"preprocessing": prep}, where, 1)
    if prep.get("resize", "align_corners") not in RESIZES:
        raise PresetError(f"{where}: preprocessing.resize must be one of {RESIZES}")
    norm = prep.get("normalization")
    if norm is not None:
        if norm not in NORMALIZATIONS:
            raise PresetError(f"{where}: preprocessing.normalization must be one of "
                              f"{sorted(NORMALIZATIONS)}, got {norm!r}")
        from deeplab_keras.backbones import get_backbone
        spec = get_backbone(_backbone(values["architecture"], values["config"]))
        if getattr(spec, NORMALIZATIONS[norm]) is None:
            raise PresetError(f"{where}: preprocessing.normalization {norm!r} is not what the "
                              f"{spec.name} backbone's in-graph preprocessing does")
