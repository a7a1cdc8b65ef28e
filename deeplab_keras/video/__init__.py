"""Video and live segmentation: :class:`VideoSegmenter` (a Keras model, preset, ``.keras``,
``.tflite`` or ``.onnx`` source, one frame at a time, optional temporal smoothing), video files in
and out (:mod:`.io`) and a pipelined decode / segment / encode pass (:mod:`.pipeline`).

    seg = dk.VideoSegmenter("camvid_int8.tflite", smoothing=True, num_threads=2)
    classes = seg.segment(frame)   # (H, W) uint8 at the frame's size
"""
from deeplab_keras.video.io import VIDEO_EXTENSIONS, VideoReader, VideoWriter
from deeplab_keras.video.pipeline import process_video
from deeplab_keras.video.segmenter import VideoSegmenter
from deeplab_keras.video.smoothing import TemporalSmoother

__all__ = ["VideoSegmenter", "TemporalSmoother", "VideoReader", "VideoWriter", "process_video",
           "VIDEO_EXTENSIONS"]
