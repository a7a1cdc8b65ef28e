"""Run by tests/test_backends.py in a subprocess with KERAS_BACKEND set (one backend per process):
``python -m tests.backend_worker TASK IN_DIR OUT_DIR [TASK IN_DIR OUT_DIR ...]``. Each task writes
``result.json`` (and arrays as ``.npz``) to its OUT_DIR for the parent test to check against
TensorFlow's numbers.

Several tasks run in one process: under JAX most of a task's time is XLA compiling each new
weight shape's initializer and each op's shape once per process (a tiny MobileNetV2 takes 13 s to
build the first time and 0.15 s the second), so one process pays it once for all tasks. A task
that raises still lets the others run: its ``result.json`` holds the error for its test."""
import json
import os
import sys
import traceback

import numpy as np

import deeplab_keras.models  # noqa: F401 - registers DeepLab / Resize for keras.saving.load_model


def family(in_dir, out_dir):
    """Load the TensorFlow-saved .keras files of IN_DIR (a cross-backend load: the builders run
    again on this backend from each file's config) and run them on the same input."""
    import keras

    import deeplab_keras as dk

    x = np.load(os.path.join(in_dir, "input.npz"))["x"]
    outputs = {}
    for name in sorted(f[:-6] for f in os.listdir(in_dir) if f.endswith(".keras")):
        model = keras.saving.load_model(os.path.join(in_dir, name + ".keras"))
        assert isinstance(model, dk.DeepLab), type(model)
        outputs[name] = keras.ops.convert_to_numpy(model(x, training=False))
    np.savez(os.path.join(out_dir, "outputs.npz"), **outputs)
    return {"backend": keras.backend.backend()}


def camvid(in_dir, out_dir):
    """The CamVid preset's class maps (dk.segment) on the images listed in IN_DIR/images.json."""
    import keras

    import deeplab_keras as dk

    model = dk.from_preset("deeplabv3plus_mobilenetv2_camvid")
    with open(os.path.join(in_dir, "images.json")) as f:
        images = json.load(f)
    maps = {str(i): dk.segment(model, path) for i, path in enumerate(images)}
    np.savez(os.path.join(out_dir, "classes.npz"), **maps)
    return {"backend": keras.backend.backend()}


def save_keras(in_dir, out_dir):
    """Build a tiny v3+ with random weights on this backend, save it as .keras with its output."""
    import keras

    import deeplab_keras as dk

    keras.utils.set_random_seed(1)
    model = dk.DeepLabV3Plus(num_classes=3, backbone="mobilenet_v2", alpha=0.35, output_stride=16,
                             atrous_rates=[], input_shape=(None, None, 3), labels=["a", "b", "c"])
    x = np.load(os.path.join(in_dir, "input.npz"))["x"]
    model.save(os.path.join(out_dir, "model.keras"))
    np.savez(os.path.join(out_dir, "saved.npz"), y=keras.ops.convert_to_numpy(model(x)))
    return {"backend": keras.backend.backend()}


def load_keras(in_dir, out_dir):
    """Load IN_DIR/model.keras (saved on another backend) and run it on the same input."""
    import keras

    model = keras.saving.load_model(os.path.join(in_dir, "model.keras"))
    x = np.load(os.path.join(in_dir, "input.npz"))["x"]
    np.savez(os.path.join(out_dir, "loaded.npz"), y=keras.ops.convert_to_numpy(model(x)))
    return {"backend": keras.backend.backend(), "labels": model.labels}


def refusals(in_dir, out_dir):
    """What stays TensorFlow refuses with a message naming the fix: each entry -> its message."""
    import keras

    import deeplab_keras as dk
    from deeplab_keras.export import export_model
    from deeplab_keras.training import train

    model = dk.DeepLabV3(num_classes=3, backbone="mobilenet_v2", alpha=0.35, output_stride=16,
                         atrous_rates=[], input_shape=(33, 33, 3))
    messages = {}
    for what, call in [("export", lambda: export_model(model, os.path.join(out_dir, "m.tflite"))),
                       ("train", lambda: train(dataset="synthetic"))]:
        try:
            call()
            messages[what] = None
        except Exception as err:  # noqa: BLE001 - the test checks type and message
            messages[what] = f"{type(err).__name__}: {err}"
    return {"backend": keras.backend.backend(), "messages": messages,
            "written": sorted(os.listdir(out_dir))}


def resize(in_dir, out_dir):
    """dk.resize on this backend for IN_DIR/input.npz's images, every semantics and method, to
    the sizes of IN_DIR/sizes.json (the parent compares with TensorFlow's kernels)."""
    import keras

    from deeplab_keras.layers.resize import METHODS, SEMANTICS
    from deeplab_keras.layers.resize import resize as dk_resize

    inputs = np.load(os.path.join(in_dir, "input.npz"))
    with open(os.path.join(in_dir, "sizes.json")) as f:
        sizes = json.load(f)
    out = {}
    for key in inputs.files:
        for size in sizes:
            for semantics in SEMANTICS:
                for method in METHODS:
                    y = dk_resize(inputs[key], size, semantics, method)
                    out[f"{key}|{size[0]}x{size[1]}|{semantics}|{method}"] = np.asarray(y)
    np.savez(os.path.join(out_dir, "resized.npz"), **out)
    return {"backend": keras.backend.backend()}


TASKS = {"family": family, "resize": resize, "camvid": camvid, "save_keras": save_keras, "load_keras": load_keras,
         "refusals": refusals}

def main(argv):
    if not argv or len(argv) % 3:
        raise SystemExit("usage: python -m tests.backend_worker TASK IN_DIR OUT_DIR [TASK IN_DIR OUT_DIR ...]")
    for i in range(0, len(argv), 3):
        task, in_dir, out_dir = argv[i:i + 3]
        os.makedirs(out_dir, exist_ok=True)
        try:
            result = TASKS[task](in_dir, out_dir)
        except Exception:  # noqa: BLE001 - reported to the task's own test, the others still run
            result = {"error": traceback.format_exc()}
        with open(os.path.join(out_dir, "result.json"), "w") as f:
            json.dump(result, f)


if __name__ == "__main__":
    main(sys.argv[1:])
