"""Pictures of an evaluation (``deeplab-keras evaluate`` writes them beside its JSON):

* :func:`confusion_heatmap` - the confusion matrix, rows normalised (recall per class);
* :func:`iou_bars` - per-class IoU as a bar chart with the mIoU line;
* :func:`example_panel` - image | ground truth | prediction, coloured with the palette.

The charts need matplotlib (``pip install "deeplab-keras[plots]"``); :func:`have_matplotlib`
says whether it is there. The example panels need only Pillow.
"""
import importlib.util

import numpy as np

from deeplab_keras.utils.io import atomic_path, is_our_png, png_info


#: the PNG ``Software`` text entry of our pictures: how evaluate knows a picture is its own
SOFTWARE = "deeplab-keras evaluate"


def is_ours(path):
    """Is ``path`` a picture evaluate wrote (a PNG carrying its ``Software`` entry)? The one
    check of our PNGs: :func:`deeplab_keras.utils.io.is_our_png`."""
    return is_our_png(path, SOFTWARE)


def have_matplotlib():
    return importlib.util.find_spec("matplotlib") is not None


def _pyplot():
    import matplotlib
    matplotlib.use("Agg", force=False)  # files only, no display needed
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path):
    plt = _pyplot()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", metadata={"Software": SOFTWARE})
    plt.close(fig)
    return path


def confusion_heatmap(confusion, names, path, title=None):
    """Row-normalised confusion matrix (each ground-truth class sums to 100 %) as a heatmap."""
    plt = _pyplot()
    cm = np.asarray(confusion, np.float64)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(names)
    side = max(4.0, 0.45 * n + 2)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    im = ax.imshow(norm * 100, cmap="viridis", vmin=0, vmax=100)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("ground truth")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if rows[i, 0] > 0:
                    ax.text(j, i, f"{norm[i, j] * 100:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if norm[i, j] < 0.6 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="% of the class's pixels")
    ax.set_title(title or "confusion matrix (rows: ground truth)")
    return _save(fig, path)


def iou_bars(per_class_iou, names, path, miou=None, title=None, palette=None):
    """Per-class IoU (fractions, NaN for classes absent from the split) as horizontal bars."""
    plt = _pyplot()
    values = np.array([np.nan if v is None else float(v) for v in per_class_iou]) * 100
    n = len(names)
    fig, ax = plt.subplots(figsize=(7, max(2.5, 0.3 * n + 1)))
    colours = [np.asarray(palette[i]) / 255 if palette is not None and i < len(palette) else "C0"
               for i in range(n)]
    ax.barh(range(n), np.nan_to_num(values), color=colours, edgecolor="black", linewidth=0.5)
    for i, v in enumerate(values):
        ax.text((0 if np.isnan(v) else v) + 1, i, "absent" if np.isnan(v) else f"{v:.1f}",
                va="center", fontsize=7)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("IoU (%)")
    if miou is not None:
        ax.axvline(miou * 100, color="red", linestyle="--", linewidth=1)
        ax.text(miou * 100, -0.8, f"mIoU {miou * 100:.1f}", color="red", fontsize=8, ha="center")
    ax.set_title(title or "per-class IoU")
    return _save(fig, path)


def example_panel(image, label, prediction, palette, path, ignore_label=None, labels=None):
    """image | ground truth | prediction side by side (ignored pixels drawn white); with
    ``labels``, the prediction carries a legend of its classes."""
    from PIL import Image

    from deeplab_keras.inference import colorize, draw_legend

    image = np.asarray(image)
    image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    label = np.asarray(label).astype(np.int64)
    ignored = label == ignore_label if ignore_label is not None else np.zeros(label.shape, bool)
    truth = colorize(np.where(ignored, 0, label), palette)
    truth[ignored] = 255
    pred = colorize(np.asarray(prediction).astype(np.int64), palette)
    if labels is not None:
        pred = draw_legend(pred, np.asarray(prediction), palette, labels)
    gap = np.full((image.shape[0], max(2, image.shape[1] // 100), 3), 255, np.uint8)
    with atomic_path(path, suffix=".png") as tmp:
        Image.fromarray(np.concatenate([image, gap, truth, gap, pred], axis=1)).save(
            tmp, pnginfo=png_info(SOFTWARE))
    return path
