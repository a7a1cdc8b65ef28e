"""A YUV4MPEG2 clip of RGB frames: the file chromium's fake camera plays
(``--use-file-for-fake-video-capture=clip.y4m``), for checking the web page with a camera."""
import numpy as np


def write_y4m(path, frames, fps=30):
    """Write ``frames`` (RGB uint8, all one size) as a 4:2:0 YUV4MPEG2 clip at ``fps``."""
    from PIL import Image
    h, w = frames[0].shape[:2]
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, u, v = Image.fromarray(frame).convert("YCbCr").split()
            f.write(b"FRAME\n" + np.asarray(y).tobytes()
                    + np.asarray(u.resize((w // 2, h // 2), Image.BILINEAR)).tobytes()
                    + np.asarray(v.resize((w // 2, h // 2), Image.BILINEAR)).tobytes())
    return path
