"""The preset catalogue: ``zoo/presets/<name>.json``, shipped in the package as
``deeplab_keras/_zoo`` (the source checkout's ``zoo/`` folder is used when running from it).

Reading it (:func:`list_presets`, :func:`get_preset`, :func:`preset_card`) needs no TensorFlow;
a preset's weight file is fetched (:func:`fetch_weights`) and its architecture built
(:func:`build_preset_model`) here. Getting the weights into a model is
:mod:`deeplab_keras.hub.weights` (``dk.from_preset``, ``dk.load_weights``).
"""
import copy
import functools
import glob
import json
import os

from deeplab_keras import download
from deeplab_keras.hub.preset import Preset, dataset_metadata, model_spec

# Model building and weight import load TensorFlow: imported where used, so reading the catalogue
# (``deeplab-keras zoo list/show``) stays TensorFlow-free.

_HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the package folder
#: where the catalogue may live: installed package data, then the source checkout
ZOO_DIRS = (os.path.join(_HERE, "_zoo"), os.path.join(os.path.dirname(_HERE), "zoo"))


def zoo_dir():
    for path in ZOO_DIRS:
        if os.path.isdir(os.path.join(path, "presets")):
            return path
    raise FileNotFoundError(f"preset catalogue not found (looked in {', '.join(ZOO_DIRS)}); "
                            "reinstall deeplab-keras")


@functools.lru_cache(maxsize=None)
def _read_catalogue(root):
    """{file: entry as read} (JSON only, no schema check: needs no TensorFlow)."""
    presets = {}
    for path in sorted(glob.glob(os.path.join(root, "presets", "*.json"))):
        with open(path) as f:
            try:
                presets[path] = json.load(f)
            except json.JSONDecodeError as err:
                raise ValueError(f"corrupt preset file {path}: {err}") from err
    return presets


@functools.lru_cache(maxsize=None)
def _catalogue(root):
    presets = {}
    for path, preset in _read_catalogue(root).items():
        preset = Preset.from_dict(preset, where=f"preset file {path}").to_dict()
        presets[preset["name"]] = preset
    return presets


def preset_card(name):
    """Preset ``name``'s entry with its dataset's labels, palette and ignore label filled in,
    without the schema checks that need the model code (and TensorFlow): what ``zoo list`` and
    ``zoo show`` print. Loading a preset (:func:`from_preset`) checks the full schema."""
    for path, entry in _read_catalogue(zoo_dir()).items():
        if isinstance(entry, dict) and entry.get("name") == name:
            return dataset_metadata(copy.deepcopy(entry), f"preset file {path}")
    names = sorted(e.get("name") for e in _read_catalogue(zoo_dir()).values() if isinstance(e, dict))
    raise ValueError(f"Unknown preset {name!r}. Available presets: {', '.join(map(str, names))}")


def preset_names():
    """Names in the catalogue as read (TensorFlow-free; :func:`list_presets` also validates)."""
    return sorted(str(e.get("name")) for e in _read_catalogue(zoo_dir()).values() if isinstance(e, dict))


def list_presets():
    """Sorted names of all presets."""
    return sorted(_catalogue(zoo_dir()))


def get_preset(name):
    """A copy of preset ``name``'s catalogue entry; ValueError listing presets if unknown."""
    presets = _catalogue(zoo_dir())
    if name not in presets:
        raise ValueError(f"Unknown preset {name!r}. Available presets: {', '.join(sorted(presets))}")
    return copy.deepcopy(presets[name])


def is_preset(name):
    return isinstance(name, str) and name in _catalogue(zoo_dir())


def weight_entry(preset, fmt=None):
    """The preset's default weight source, or the first one of format ``fmt``."""
    entries = preset["weights"]
    if not entries:
        raise ValueError(f"preset {preset['name']!r} has no weights")
    if fmt is not None:
        for entry in entries:
            if entry["format"] == fmt:
                return entry
        raise ValueError(f"preset {preset['name']!r} has no {fmt!r} weights (has: "
                         f"{', '.join(e['format'] for e in entries)})")
    return next((e for e in entries if e.get("default")), entries[0])


def fetch_weights(name, fmt=None, allow_unpinned=False, progress=True):
    """Local path of preset ``name``'s weight file: shipped in ``zoo/weights`` or downloaded
    (verified) into the cache. Returns ``(path, entry)``."""
    preset = get_preset(name)
    entry = weight_entry(preset, fmt)
    if entry.get("path"):
        path = os.path.join(zoo_dir(), entry["path"])
        if not os.path.isfile(path):
            raise FileNotFoundError(f"preset {name!r}: shipped weights {path} are missing")
        if entry.get("sha256") or entry.get("md5"):
            download.verify(path, entry.get("sha256"), entry.get("md5"), entry.get("size"))
        return path, entry
    path = download.fetch(entry["url"], entry["file"], sha256=entry.get("sha256"),
                          md5=entry.get("md5"), size=entry.get("size"),
                          allow_unpinned=allow_unpinned, progress=progress)
    return path, entry


def preset_metadata(preset, num_classes):
    """The preset's labels, palette, ignore label and input contract, as builder keyword
    arguments (labels and palette only when ``num_classes`` is the preset's own)."""
    same = num_classes == preset["config"].get("num_classes")
    return {"labels": preset.get("labels") if same else None,
            "palette": preset.get("palette") if same else None,
            "ignore_label": preset.get("ignore_label"),
            "preprocessing": preset.get("preprocessing")}


def build_preset_model(preset, **overrides):
    """Preset ``preset``'s architecture (no weights), with its labels, palette, ignore label and
    input contract attached (see :class:`deeplab_keras.models.DeepLab`)."""
    architecture, config = model_spec(preset)
    config.update(overrides)
    if config.get("num_classes") is None:
        raise ValueError(f"preset {preset['name']!r} is a backbone: pass num_classes=...")
    metadata = preset_metadata(preset, config["num_classes"])
    for key in list(metadata):
        if key in config:
            metadata[key] = config.pop(key)
    from deeplab_keras.models import BUILDERS
    return BUILDERS.build(architecture, **config, **metadata)


def conversion_classes(preset):
    """Classes of the model converted weights are stored for (backbone presets: a dummy 21)."""
    return preset["config"].get("num_classes") or 21
