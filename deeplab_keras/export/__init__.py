"""Deployment: SavedModel, TFLite (float32 / float16 / dynamic / int8 / QAT) and ONNX exports,
each verified by a parity gate against the Keras model, plus CPU latency benchmarks.

    from deeplab_keras.export import export_model
    report = export_model(model, "model.tflite", quantize="int8", input_size=513,
                          calibration_data="images/")
"""
from deeplab_keras.export.api import FORMATS, REGISTRY, export_model, register_format
from deeplab_keras.export.benchmark import benchmark
from deeplab_keras.export.convert import QUANTIZE_MODES, read_onnx_metadata, read_tflite_metadata
from deeplab_keras.export.graph import OUTPUT_MODES, serving_function
from deeplab_keras.export.parity import THRESHOLDS, ParityError
from deeplab_keras.export.runtime import Artifact
from deeplab_keras.export.verify import export_and_verify

__all__ = ["export_model", "register_format", "REGISTRY", "export_and_verify", "benchmark", "serving_function", "Artifact", "ParityError",
           "read_tflite_metadata", "read_onnx_metadata", "FORMATS", "QUANTIZE_MODES",
           "OUTPUT_MODES", "THRESHOLDS"]
