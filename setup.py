"""deeplab-keras: DeepLab v1/v2/v3/v3+ for Keras 3 / TensorFlow."""
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _version():
    ns = {}
    with open(os.path.join(HERE, "deeplab_keras", "version.py")) as f:
        exec(f.read(), ns)
    return ns["__version__"]


EXTRAS = {
    "onnx": ["tf2onnx>=1.16", "onnx>=1.15", "onnxruntime>=1.17"],
    "tflite": ["ai-edge-litert>=1.0"],
    "qat": ["tensorflow-model-optimization>=0.8", "tf_keras>=2.16,<2.21"],
    "crf": ["pydensecrf2>=1.0"],
    # MediaPipe Tasks: standard TFLite metadata writers + the ImageSegmenter gate (export --target mediapipe)
    "mobile": ["mediapipe>=1.2"],
    # evaluate's confusion-matrix heatmap and per-class IoU chart (skipped with a message without)
    "plots": ["matplotlib>=3.5"],
    # predict on video files (.mp4 ...): imageio with its bundled ffmpeg binary
    "video": ["imageio>=2.28", "imageio-ffmpeg>=0.4.9"],
    # other Keras 3 backends for the models and inference (KERAS_BACKEND=jax / torch; export, QAT
    # and training stay TensorFlow): docs/backends.md. jax from PyPI is CPU-only (~380 MB). PyPI's
    # torch Linux wheel depends on the CUDA libraries (GBs); for CPU use the +cpu wheel:
    # pip install torch --index-url https://download.pytorch.org/whl/cpu, then the extra is met
    "jax": ["jax>=0.4.30"],
    "torch": ["torch>=2.2"],
    # the documentation site (mkdocs.yml, docs/): mkdocs build --strict; not a runtime feature
    "docs": ["mkdocs>=1.6", "mkdocstrings[python]>=0.26"],
}
# mediapipe 1.2 pins absl-py~=2.3 and tensorflow-model-optimization 0.8 pins absl-py~=1.2: pip
# cannot resolve both in one install (it backtracks through every tensorflow release), so [all]
# and [dev] leave [mobile] out; install it after: pip install -e ".[dev]" && pip install -e ".[mobile]"
# (both import and run together; pip check then reports only tfmot's absl-py pin).
EXTRAS["all"] = sorted({d for name, deps in EXTRAS.items()
                        if name not in ("mobile", "docs", "jax", "torch") for d in deps})
EXTRAS["dev"] = EXTRAS["all"] + ["pytest>=7"]

setup(
    name="deeplab-keras",
    version=_version(),
    description="DeepLab v1, v2, v3 and v3+ semantic segmentation for Keras 3 / TensorFlow",
    long_description=open(os.path.join(HERE, "README.md")).read() if os.path.exists(os.path.join(HERE, "README.md")) else "",
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["deeplab_keras", "deeplab_keras.*"]) + ["deeplab_keras._zoo"],
    # The preset catalogue lives in the top-level zoo/ folder and ships inside the package.
    package_dir={"deeplab_keras": "deeplab_keras", "deeplab_keras._zoo": "zoo"},
    package_data={"deeplab_keras._zoo": ["presets/*.json", "recipes/*.json", "weights/*"],
                  # the page export --target web copies into its folder (deeplab_keras/web/)
                  "deeplab_keras.web": ["static/*.html", "static/*.js"]},
    install_requires=[
        "tensorflow>=2.16,<2.21",
        "keras>=3.3,<4",
        "numpy>=1.23",
        "pillow>=9",
        "filelock>=3.12",  # one download per file across processes (download.py)
        "packaging>=20",
    ],
    extras_require=EXTRAS,
    entry_points={"console_scripts": ["deeplab-keras=deeplab_keras.cli:main"]},
)
