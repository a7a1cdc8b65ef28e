"""A synthetic CamVid-like road scene drawn at run time (no data files): the demo's image and
the export demo's calibration and parity images."""
import numpy as np


def road_scene(height=360, width=480, seed=0):
    """A synthetic CamVid-like road scene (RGB uint8) and its drawn class map."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (width, height))
    lab = Image.new("L", (width, height))
    d, m = ImageDraw.Draw(img), ImageDraw.Draw(lab)
    horizon = int(height * 0.45)

    def shape(kind, xy, colour, label):
        getattr(d, kind)(xy, fill=colour)
        getattr(m, kind)(xy, fill=label)

    for y in range(horizon):  # sky gradient
        c = int(150 + 80 * y / horizon)
        d.line([(0, y), (width, y)], fill=(c - 20, c, 235))
    shape("rectangle", [0, horizon, width, height], (170, 160, 150), 4)  # pavement
    x = 0
    while x < width:  # buildings along the horizon
        w, h = int(rng.integers(40, 90)), int(rng.integers(60, 150))
        tone = int(rng.integers(90, 160))
        shape("rectangle", [x, horizon - h, x + w, horizon + 20], (tone, tone - 30, tone - 40), 1)
        x += w + int(rng.integers(0, 10))
    shape("polygon", [(width * 0.42, horizon + 20), (width * 0.58, horizon + 20), (width, height),
                      (0, height)], (95, 90, 100), 3)  # road
    for i in range(5):  # lane markings (road)
        y0 = horizon + 30 + i * (height - horizon) // 5
        d.rectangle([width // 2 - 2 - i, y0, width // 2 + 2 + i, y0 + 12], fill=(230, 230, 230))
    for cx, cy, r in ((60, horizon - 10, 45), (width - 70, horizon - 5, 50)):  # trees
        shape("ellipse", [cx - r, cy - r, cx + r, cy + r], (60, 120, 40), 5)
    shape("rectangle", [int(width * 0.3), horizon - 60, int(width * 0.3) + 5, horizon + 60],
          (200, 200, 180), 2)  # pole
    for x0, y0, w, h, colour in ((int(width * 0.2), int(height * 0.7), 110, 60, (180, 20, 30)),
                                 (int(width * 0.6), int(height * 0.58), 70, 40, (20, 40, 160))):
        shape("rectangle", [x0, y0, x0 + w, y0 + h], colour, 8)  # cars
    noise = rng.normal(0, 4, (height, width, 3))
    image = np.clip(np.asarray(img, np.float32) + noise, 0, 255).astype(np.uint8)
    return image, np.asarray(lab)
