"""Basic inference: read an image, run a model at its preset's input size, get the class map at
the image's size, and draw a colour overlay with the preset's palette.

Modules by concern: :mod:`.image` (decoding to RGB uint8), :mod:`.predict` (a Keras model's input
contract, logits and class maps), :mod:`.source` (the segmenter layer: any model or exported
file opened once, its contract checked, one call to a class map), :mod:`.runtime` (the one place
LiteRT / onnxruntime / TensorFlow sessions are opened), :mod:`.multiscale` (scales, flip, sliding
windows, CRF) and :mod:`.draw` (palettes, overlays, legends, class-map PNGs).
"""
from deeplab_keras.inference.draw import (BACKGROUND_NAMES, background_classes, colorize,
                                          default_palette, draw_legend, overlay,
                                          replace_background, save_class_map, save_png)
from deeplab_keras.inference.image import as_rgb8, load_image, to_rgb8
from deeplab_keras.inference.predict import input_contract, predict_classes, predict_logits
from deeplab_keras.inference.source import (FileSegmenter, KerasSegmenter, Segmenter,
                                            open_segmenter, segment)

__all__ = ["BACKGROUND_NAMES", "background_classes", "colorize", "default_palette", "draw_legend",
           "overlay", "replace_background", "save_class_map", "save_png", "as_rgb8",
           "load_image", "to_rgb8", "input_contract", "predict_classes", "predict_logits",
           "segment", "open_segmenter", "Segmenter", "KerasSegmenter", "FileSegmenter"]
