"""The one model loader of the command line (predict, evaluate, export, demo) and the flags
they share.

Model flags (:func:`add_model_arguments`, :func:`load_model`):

* ``--preset NAME``: the preset's architecture, weights, labels, palette and input contract;
* ``--weights FILE``: a ``.keras`` or ``.tflite`` file stands alone (its architecture and number
  of classes come from the file: ``dk.from_tflite`` for a ``.tflite``; no preset needed); other
  weight files (``.weights.h5``, TF1 checkpoints, URLs, preset names) go into the architecture
  of ``--preset`` or ``--config``/``--architecture`` (through ``dk.load_weights``);
  ``none`` keeps the fresh initialisation;
* ``--config``: a JSON file or string: builder arguments, a preset JSON or a training
  config/recipe (``architecture`` + ``model``); with ``--preset`` only builder arguments
  (overrides of the preset's);
* ``--architecture``: deeplabv1 | deeplabv2 | deeplabv3 | deeplabv3plus;
* ``--num-classes``: classes of the model (a new head for a preset with another number);
* ``--allow-unpinned``: allow weight downloads without a pinned checksum.

``--input-size`` takes ``N``, ``H W`` or ``HxW`` everywhere (:func:`add_input_size`).
"""
import json
import os

FRESH = "none"


def add_model_arguments(parser, *, num_classes_help="classes of the model (default: the preset's)"):
    group = parser.add_argument_group("model")
    group.add_argument("--preset", help="preset name (see `deeplab-keras zoo list`)")
    group.add_argument("--weights", help="weights: a .keras or .tflite model file (stands alone), "
                       "a weights file/URL/preset for the architecture of --preset/--config, or "
                       "'none' (fresh initialisation)")
    group.add_argument("--config", help="JSON file or string: builder arguments (overrides of the "
                       "preset's with --preset), a preset JSON or a training config/recipe")
    group.add_argument("--architecture", help="deeplabv1 | deeplabv2 | deeplabv3 | deeplabv3plus")
    group.add_argument("--num-classes", type=int, help=num_classes_help)
    group.add_argument("--allow-unpinned", action="store_true",
                       help="allow weight files without a pinned checksum (sha256 is printed)")
    return group


def parse_input_size(values):
    """``["513"]``, ``["257", "385"]``, ``["257x385"]`` (or a string) -> ``(h, w)``."""
    if values is None:
        return None
    text = " ".join(values) if isinstance(values, (list, tuple)) else str(values)
    parts = text.lower().replace("x", " ").replace(",", " ").split()
    try:
        size = [int(p) for p in parts]
    except ValueError:
        size = []
    if len(size) == 1:
        size *= 2
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"--input-size takes N, H W or HxW with positive sizes, got {text!r}")
    return tuple(size)


def split_input_size(values):
    """``--input-size`` takes one or two tokens, but argparse hands it every token up to the next
    flag (``--input-size 257 385 image.png``): ``(size, the tokens after the size)``."""
    if values is None:
        return None, []
    values = list(values) if isinstance(values, (list, tuple)) else [str(values)]
    count = 1 if "x" in values[0].lower() else 2 if len(values) > 1 and values[1].isdigit() else 1
    return parse_input_size(values[:count]), values[count:]


def add_input_size(parser, required=False, help="input size: N, H W or HxW"):
    parser.add_argument("--input-size", nargs="+", metavar="SIZE", required=required, help=help)


def load_json(text, flag="--config"):
    """A JSON object from a file path or a JSON string."""
    if os.path.isfile(text):
        with open(text) as f:
            try:
                value = json.load(f)
            except ValueError as err:
                raise ValueError(f"{flag} {text}: not valid JSON ({err})") from None
    else:
        try:
            value = json.loads(text)
        except ValueError:
            raise ValueError(f"{flag} {text!r} is neither a file nor a JSON string") from None
    if not isinstance(value, dict):
        raise ValueError(f"{flag} must be a JSON object, got {value!r}")
    return value


def read_config_flag(config):
    """``(architecture or None, builder kwargs, metadata)`` of a --config object: a preset
    JSON, a training config/recipe or plain builder arguments."""
    from deeplab_keras.hub import preset, zoo

    config = dict(config)
    if "config" in config and "architecture" in config:  # preset JSON
        entry = preset.Preset.from_dict(config, where="--config").to_dict()
        architecture, kwargs = preset.model_spec(entry)
        return architecture, kwargs, zoo.preset_metadata(entry, kwargs.get("num_classes"))
    if "model" in config and "architecture" in config:  # training recipe / config
        architecture, kwargs = preset.model_spec(config)
        if config.get("num_classes"):
            kwargs.setdefault("num_classes", config["num_classes"])
        return architecture, kwargs, {}
    return config.pop("architecture", None), config, {}


#: model files that carry their architecture: --weights FILE needs no --preset
STANDALONE = (".keras", ".tflite")


def check_artifact(args):
    """The one check of ``--artifact`` (predict, evaluate, live): the file runs alone, and is an
    exported model; what else applies to it is the segmenter layer's to say
    (:func:`deeplab_keras.inference.open_segmenter`). Returns the path."""
    from deeplab_keras.inference.source import is_model_file

    if args.preset or args.weights or getattr(args, "config", None) or \
            getattr(args, "architecture", None):
        raise ValueError("--artifact runs the exported file alone: drop --preset/--weights/"
                         "--config/--architecture")
    if os.path.exists(args.artifact) and not is_model_file(args.artifact):
        raise ValueError(f"--artifact {args.artifact}: not an exported model (expected a .tflite "
                         "/ .onnx file or a SavedModel folder)")
    return args.artifact


def stands_alone(args):
    """``--weights`` is a ``.keras`` / ``.tflite`` file given without an architecture."""
    weights = str(args.weights or "")
    return weights.endswith(STANDALONE) and not (args.preset or args.config or args.architecture)


def _load_model_file(path, num_classes):
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model file not found: {path}")
    if path.endswith(".tflite"):
        from deeplab_keras.importers.tflite import from_tflite
        model = from_tflite(path)  # architecture and weights read from the file
    else:
        import keras
        model = keras.saving.load_model(path, compile=False)  # safe mode: reads this file only
    if num_classes is not None and model.outputs[0].shape[-1] != num_classes:
        raise ValueError(f"{path} predicts {model.outputs[0].shape[-1]} classes, not --num-classes "
                         f"{num_classes}")
    return model


def load_model(args, *, num_classes=None, missing_weights="error"):
    """The model the model flags name (see the module docstring).

    Args:
        num_classes: default number of classes when the flags do not fix it (evaluate: the
            dataset's); ``--num-classes`` wins.
        missing_weights: ``"error"`` (predict, evaluate) or ``"fresh"`` (export: an architecture
            without ``--weights`` keeps its initialisation, as ``--weights none``).
    """
    from deeplab_keras.hub import zoo
    from deeplab_keras.hub.weights import from_preset, load_weights
    from deeplab_keras.builders import build_model

    classes = args.num_classes if args.num_classes is not None else num_classes
    weights = args.weights
    fresh = weights is not None and str(weights).lower() == FRESH
    if args.preset and args.architecture:
        raise ValueError("give --preset or --architecture, not both")
    if args.preset:
        overrides = load_json(args.config) if args.config else {}
        architecture, overrides, _ = read_config_flag(overrides)
        if architecture or "weights" in overrides:
            raise ValueError("with --preset, --config takes builder arguments (overrides of the "
                             "preset's), not a preset or recipe")
        explicit = args.num_classes if args.num_classes is not None else overrides.pop("num_classes", None)
        classes = explicit if explicit is not None else classes
        preset = zoo.get_preset(args.preset)
        own = preset["config"].get("num_classes")
        # the preset's own weights keep its head: another number of classes needs --weights
        chosen = explicit if weights is None else classes
        chosen = own if chosen is None else chosen
        if chosen is None:
            raise ValueError(f"preset {args.preset!r} is a backbone: give --num-classes")
        if weights is None and own is not None and chosen != own:
            raise ValueError(f"preset {args.preset!r} predicts {own} classes, not {chosen}: a new "
                             "head would be untrained; give --weights FILE with your trained weights")
        if weights is None:
            return from_preset(args.preset, num_classes=chosen,
                               allow_unpinned=args.allow_unpinned, **overrides)
        model = from_preset(args.preset, num_classes=chosen, weights=False, **overrides)
        return model if fresh else load_weights(model, weights, allow_unpinned=args.allow_unpinned)
    if weights and not fresh and stands_alone(args):
        return _load_model_file(str(weights), args.num_classes)
    if not weights and missing_weights == "error" and not args.architecture:
        raise ValueError("give --preset NAME or --weights FILE")
    architecture, kwargs, metadata = read_config_flag(load_json(args.config)) if args.config else (None, {}, {})
    architecture = args.architecture or architecture
    if not architecture:
        raise ValueError(f"--weights {weights} needs the architecture: --preset, --architecture "
                         "or --config (.keras and .tflite files carry their own)")
    if not weights and missing_weights == "error":
        raise ValueError(f"--architecture {architecture} needs --weights FILE (or --weights none "
                         "for a freshly initialised model)")
    if "weights" in kwargs:
        raise ValueError("--config takes builder arguments; give the weights with --weights")
    if classes is not None:
        kwargs.setdefault("num_classes", classes)
    model = build_model(architecture, **kwargs, **metadata)
    if weights and not fresh:
        load_weights(model, weights, allow_unpinned=args.allow_unpinned)
    return model
