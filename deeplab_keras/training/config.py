"""Training configuration: a flat dict of settings, read from a JSON recipe (``zoo/recipes``)
and changed with overrides (``--set key=value``; values are parsed as JSON when they can be)."""
import copy
import json
import os

DEFAULTS = {
    "name": "run",
    "architecture": "deeplabv3plus",
    "model": {"backbone": "mobilenet_v2", "output_stride": 16},  # builder kwargs
    "init_tflite": None,       # Google DeepLab .tflite whose weights start the run
    "init_weights": None,      # or a Keras .weights.h5 / .keras / preset
    "dataset": "folder",       # DATASETS name or "folder"
    "data_root": None,
    "num_classes": None,       # for "folder" (else from the dataset)
    "labels": None,            # class names for "folder" (default class_0, class_1, ...)
    "ignore_label": 255,       # for "folder"
    "train_split": "train",
    "val_split": "val",
    "tfrecords": None,         # TFRecord files instead of data_root
    "crop_size": [513, 513],
    "crop_jitter": 0,          # e.g. 16: each batch cropped at crop_size + (0..15, 0..15), every stride-16 alignment
    "crop_focus_classes": None,  # class names or ids: crops placed around their pixels with crop_focus_probability
    "crop_focus_probability": 0.5,
    "min_scale": 0.5,
    "max_scale": 2.0,
    "batch_size": 8,           # global batch (split over replicas)
    "val_batch_size": 4,
    "cache": False,
    "max_train_images": None,
    "max_val_images": None,
    "class_weights": None,     # list, or "median_frequency"
    "class_weight_power": 1.0,
    "top_k_percent": 100.0,    # hard-pixel mining
    "optimizer": "sgd",        # "sgd" (momentum) or "adamw"
    "learning_rate": 0.007,
    "weight_decay": 4e-5,
    "momentum": 0.9,
    "warmup_steps": 0,
    "poly_power": 0.9,
    "ema_momentum": None,      # e.g. 0.999: the run ends with an exponential moving average of the weights
    "epochs": 10,
    "steps_per_epoch": None,   # default: one pass over the training images
    "validation_freq": 1,
    "seed": 0,
    "mixed_precision": None,   # None, "mixed_float16" or "mixed_bfloat16"
    "freeze_bn": "pretrained", # True, False, or "pretrained" (BN layers the init weights filled)
    "sync_bn": False,
    "strategy": "default",
    "minutes": None,           # wall-clock budget
    "output_dir": None,        # default runs/<name>
    "tensorboard": True,
    "verbose": 1,
    "jit_compile": False,
    "check_data": "full",      # "full": every mask's label values checked before training; "header"; null
}


def _recipe_file(recipe):
    path = os.fspath(recipe)
    if os.path.isfile(path):
        return path
    here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    for folder in (os.path.join(here, "zoo", "recipes"),
                   os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "_zoo", "recipes")):
        candidate = os.path.join(folder, path if path.endswith(".json") else path + ".json")
        if os.path.isfile(candidate):
            return candidate
    raise FileNotFoundError(f"recipe not found: {recipe}")


def load_recipe(recipe, _seen=()):
    """A recipe name (file in ``zoo/recipes``), a path to a JSON file, or a dict.

    ``"extends": "OTHER"`` (a recipe name or path) starts from that recipe's settings and
    changes the ones given (an ablation row is its base recipe and one lever)."""
    if isinstance(recipe, dict):
        settings, where = copy.deepcopy(recipe), "the recipe"
    else:
        path = _recipe_file(recipe)
        with open(path) as f:
            try:
                settings = json.load(f)
            except ValueError as err:
                raise ValueError(f"{path}: not valid JSON ({err})") from None
        where = path
        if os.path.realpath(path) in _seen:
            raise ValueError(f"{path}: recipes extend each other in a loop")
        _seen = _seen + (os.path.realpath(path),)
    if not isinstance(settings, dict):
        raise ValueError(f"{where}: a recipe is a JSON object of settings")
    base = settings.pop("extends", None)
    if base is None:
        return settings
    if not isinstance(base, str) or not base:
        raise ValueError(f"{where}: \"extends\" must name a recipe, got {base!r}")
    merged = load_recipe(base, _seen)
    if "model" in settings:  # a whole model replaces the base's model.<kwarg> settings too
        merged = {k: v for k, v in merged.items() if not k.startswith("model.")}
    merged.update(settings)
    return merged


def parse_override(text):
    """``"key=value"`` -> ``(key, value)``; value parsed as JSON if possible, else a string."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like key=value")
    key, value = text.split("=", 1)
    try:
        return key.strip(), json.loads(value)
    except ValueError:
        return key.strip(), value


def make_config(recipe=None, **overrides):
    """Defaults < recipe < overrides. ``model.<kwarg>`` keys set builder arguments. Unknown
    keys are errors (typos must not be ignored)."""
    config = copy.deepcopy(DEFAULTS)
    for source in (load_recipe(recipe) if recipe is not None else {}, overrides):
        for key, value in source.items():
            if key.startswith("model."):
                config["model"] = dict(config["model"], **{key[6:]: value})
            elif key == "model":
                config["model"] = dict(value)
            elif key in DEFAULTS:
                config[key] = value
            elif key in ("class_weights_used", "frozen_bn", "frozen_bn_layers"):
                pass  # written by train() into config.json for the record; not settings
            elif not key.startswith("_"):  # "_comment" etc. are allowed in recipes
                raise ValueError(f"unknown training setting {key!r}; known: {', '.join(DEFAULTS)}")
    if config["output_dir"] is None:
        config["output_dir"] = os.path.join("runs", config["name"]) if isinstance(config["name"], str) else None
    validate_config(config)
    return config


# --- Validation by type and range before any work (issue 11) ----------------------------------

def _check_str(name, value, allow_none=False):
    from deeplab_keras.utils.validate import SettingError, describe
    if (value is None and allow_none) or (isinstance(value, str) and value):
        return value
    raise SettingError(f"setting {name} must be a non-empty string{' or null' if allow_none else ''}, "
                       f"got {describe(value)}")


def _check_bool(name, value, extra=()):
    from deeplab_keras.utils.validate import SettingError, describe
    if isinstance(value, bool) or value in extra:
        return value
    allowed = "true or false" + "".join(f" or {e!r}" for e in extra)
    raise SettingError(f"setting {name} must be {allowed}, got {describe(value)}")


def validate_config(config):
    """Raise :class:`deeplab_keras.utils.validate.SettingError` (a ValueError) naming the first
    setting of ``config`` with a wrong type or out of range, and what is allowed."""
    from deeplab_keras.utils.validate import (SettingError, check_choice, check_number, describe)

    num, c = check_number, config
    _check_str("name", c["name"])
    _check_str("architecture", c["architecture"])
    if not isinstance(c["model"], dict):
        raise SettingError(f"setting model must be an object of builder arguments, got {describe(c['model'])}")
    for key in ("init_tflite", "init_weights", "data_root", "output_dir"):
        _check_str(key, c[key], allow_none=True)
    _check_str("dataset", c["dataset"])
    _check_str("train_split", c["train_split"])
    _check_str("val_split", c["val_split"], allow_none=True)
    num("num_classes", c["num_classes"], kind=int, low=1, allow_none=True)
    if c["dataset"] == "folder" and c["num_classes"] is None and not c["tfrecords"]:
        raise SettingError("setting num_classes is needed with dataset \"folder\" (an integer >= 1)")
    num("ignore_label", c["ignore_label"], kind=int, low=0, high=65535)
    if c["crop_size"] is not None:
        crop = c["crop_size"]
        if (not isinstance(crop, (list, tuple)) or len(crop) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in crop)):
            raise SettingError(f"setting crop_size must be [height, width], two integers >= 1 "
                               f"(or null), got {describe(crop)}")
    num("crop_jitter", c["crop_jitter"], kind=int, low=0, high=1024)
    focus = c["crop_focus_classes"]
    if focus is not None and (not isinstance(focus, (list, tuple)) or not focus or not all(
            (isinstance(v, str) and v) or (isinstance(v, int) and not isinstance(v, bool) and v >= 0)
            for v in focus)):
        raise SettingError(f"setting crop_focus_classes must be null or a list of class names or "
                           f"ids >= 0, got {describe(focus)}")
    num("crop_focus_probability", c["crop_focus_probability"], low=0, high=1)
    num("min_scale", c["min_scale"], low=0, low_open=True)
    num("max_scale", c["max_scale"], low=c["min_scale"])
    num("batch_size", c["batch_size"], kind=int, low=1)
    num("val_batch_size", c["val_batch_size"], kind=int, low=1)
    _check_bool("cache", c["cache"])
    num("max_train_images", c["max_train_images"], kind=int, low=1, allow_none=True)
    num("max_val_images", c["max_val_images"], kind=int, low=1, allow_none=True)
    weights = c["class_weights"]
    if weights is not None and weights != "median_frequency":
        if not isinstance(weights, (list, tuple)) or not weights:
            raise SettingError(f"setting class_weights must be null, \"median_frequency\" or a list "
                               f"of numbers >= 0, got {describe(weights)}")
        for i, w in enumerate(weights):
            num(f"class_weights[{i}]", w, low=0)
    num("class_weight_power", c["class_weight_power"], low=0)
    num("top_k_percent", c["top_k_percent"], low=0, high=100, low_open=True)
    if not isinstance(c["optimizer"], str) or c["optimizer"].lower() not in ("sgd", "adamw"):
        check_choice("optimizer", c["optimizer"], ("sgd", "adamw"))
    num("learning_rate", c["learning_rate"], low=0, low_open=True)
    num("weight_decay", c["weight_decay"], low=0)
    num("momentum", c["momentum"], low=0, high=1)
    num("warmup_steps", c["warmup_steps"], kind=int, low=0)
    num("poly_power", c["poly_power"], low=0)
    # 1 would keep the initial weights for ever
    num("ema_momentum", c["ema_momentum"], low=0, high=1, low_open=True, high_open=True, allow_none=True)
    num("epochs", c["epochs"], kind=int, low=1)
    num("steps_per_epoch", c["steps_per_epoch"], kind=int, low=1, allow_none=True)
    num("validation_freq", c["validation_freq"], kind=int, low=1)
    num("seed", c["seed"], kind=int, low=0, high=2**32 - 1)
    check_choice("mixed_precision", c["mixed_precision"], ("mixed_float16", "mixed_bfloat16", "float32"),
                 allow_none=True)
    _check_bool("freeze_bn", c["freeze_bn"], extra=("pretrained",))
    _check_bool("sync_bn", c["sync_bn"])
    check_choice("strategy", c["strategy"], ("default", "mirrored", "multi_worker", "tpu"))
    num("minutes", c["minutes"], low=0, low_open=True, allow_none=True)
    _check_bool("tensorboard", c["tensorboard"])
    check_choice("verbose", c["verbose"], (0, 1, 2, "auto"))
    _check_bool("jit_compile", c["jit_compile"], extra=("auto",))
    check_choice("check_data", c["check_data"], ("full", "header"), allow_none=True)
    return config


def fit_warmup(warmup_steps, total_steps):
    """The warm-up for a run of ``total_steps``: ``warmup_steps`` if shorter than the run, else
    scaled down to a tenth of the run (with a note saying which setting to change)."""
    import sys

    if warmup_steps < total_steps:
        return warmup_steps
    scaled = total_steps // 10
    print(f"deeplab-keras train: warmup_steps={warmup_steps} is not shorter than this run's "
          f"{total_steps} steps (epochs x steps_per_epoch); using warmup_steps={scaled} (a tenth "
          f"of the run). Set warmup_steps below {total_steps} to choose it.", file=sys.stderr)
    return scaled
