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
    "ignore_label": 255,       # for "folder"
    "train_split": "train",
    "val_split": "val",
    "tfrecords": None,         # TFRecord files instead of data_root
    "crop_size": [513, 513],
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
}


def load_recipe(recipe):
    """A recipe name (file in ``zoo/recipes``), a path to a JSON file, or a dict."""
    if isinstance(recipe, dict):
        return copy.deepcopy(recipe)
    path = os.fspath(recipe)
    if not os.path.isfile(path):
        here = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        for folder in (os.path.join(here, "zoo", "recipes"),
                       os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "_zoo", "recipes")):
            candidate = os.path.join(folder, path if path.endswith(".json") else path + ".json")
            if os.path.isfile(candidate):
                path = candidate
                break
        else:
            raise FileNotFoundError(f"recipe not found: {recipe}")
    with open(path) as f:
        try:
            return json.load(f)
        except ValueError as err:
            raise ValueError(f"{path}: not valid JSON ({err})") from None


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
        config["output_dir"] = os.path.join("runs", config["name"])
    return config
