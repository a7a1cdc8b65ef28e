"""Web: frames/s of the exported page in headless Chromium (MediaPipe Tasks for Web, wasm CPU
delegate) beside MediaPipe Python's ImageSegmenter (VIDEO mode) on the same ``model.tflite``.

    python bench/web.py --folder runs/web/camvid_web

The folder is ``deeplab-keras export --preset deeplabv3plus_mobilenetv2_camvid --target web
--input-size 360x480 --calibration ../shared/data/camvid/train --num-calibration 32 --output
runs/web/camvid_web`` (made
by this script when ``--folder`` does not exist). The input is CamVid's val clip
(../shared/data/camvid/val, 101 frames at 480x360): for the page, Chromium's fake camera plays it
as a y4m at 60 frames/s (above both rates, so the page's own speed is measured, not the camera's);
MediaPipe Python segments the same frames from memory. Rounds alternate the two (the medians of
the rounds are reported); the page is closed while Python runs. Needs chromium, chromedriver,
selenium and mediapipe, as tests/test_web.py.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import benchlib
from deeplab_keras.web.y4m import write_y4m

CAMVID = os.path.join(benchlib.HERE, "..", "..", "shared", "data", "camvid")
HOST_RULES = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def load_frames(root, limit=None):
    from PIL import Image
    folder = os.path.join(root, "val")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".png"))[:limit]
    return [np.asarray(Image.open(os.path.join(folder, n)).convert("RGB")) for n in names]


def start_browser(*args, window="1000,900"):
    """Headless Debian chromium through selenium, every host but 127.0.0.1 unresolvable."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                f"--host-resolver-rules={HOST_RULES}", f"--window-size={window}", *args):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))


def dataset(driver):
    return driver.execute_script("return Object.assign({}, document.body.dataset)")


def wait_for(driver, until, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        data = dataset(driver)
        if data.get("error"):
            raise RuntimeError(f"the page says: {data['error']}")
        if until(data):
            return data
        time.sleep(0.1)
    raise RuntimeError(f"page state after {timeout} s: {data}")


def browser_fps(driver, url, seconds):
    driver.get(url)
    wait_for(driver, lambda d: int(d.get("frames", 0)) >= 10)  # warmed up
    f0, t0 = int(dataset(driver)["frames"]), time.perf_counter()
    time.sleep(seconds)
    f1, t1 = int(dataset(driver)["frames"]), time.perf_counter()
    driver.get("about:blank")
    return (f1 - f0) / (t1 - t0)


def python_fps(model, frames, seconds):
    import mediapipe as mp
    from mediapipe.tasks.python import vision
    from mediapipe.tasks.python.core.base_options import BaseOptions
    opts = vision.ImageSegmenterOptions(base_options=BaseOptions(model_asset_path=model),
                                        running_mode=vision.RunningMode.VIDEO,
                                        output_category_mask=True, output_confidence_masks=False)
    images = [mp.Image(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(f)) for f in frames]
    with vision.ImageSegmenter.create_from_options(opts) as seg:
        ts = 0
        for image in images[:5]:  # warm up
            ts += 33
            seg.segment_for_video(image, ts)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            ts += 33
            seg.segment_for_video(images[n % len(images)], ts).category_mask.numpy_view()
            n += 1
        return n / (time.perf_counter() - t0)


def export(folder):
    cmd = [sys.executable, "-m", "deeplab_keras", "export", "--preset",
           "deeplabv3plus_mobilenetv2_camvid", "--target", "web", "--input-size", "360x480",
           "--calibration", os.path.join(CAMVID, "train"), "--num-calibration", "32", "--output",
           folder]
    print(" ".join(cmd[1:]), flush=True)
    subprocess.run(cmd, check=True, cwd=os.path.dirname(benchlib.HERE))


def main():
    p = benchlib.parser(__doc__, "web.md", timing=False)
    p.add_argument("--folder", default="runs/web/camvid_web", help="an export --target web folder "
                   "(exported at 360x480 when absent)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round and side")
    args = p.parse_args()
    if benchlib.missing(CAMVID, "CamVid"):
        return 0
    if not os.path.isdir(args.folder):
        export(os.path.abspath(args.folder))
    from deeplab_keras.web.app import read_report
    from deeplab_keras.web.server import Server
    report = read_report(args.folder)
    if report is None:
        raise SystemExit(f"{args.folder} is not a folder export --target web wrote")
    frames = load_frames(CAMVID)
    model = os.path.join(args.folder, "model.tflite")
    work = tempfile.mkdtemp(prefix="bench_web_")
    clip = os.path.join(work, "camvid_val.y4m")
    write_y4m(clip, frames, fps=60)
    load0 = os.getloadavg()[0]
    results = {"page, overlay drawn": [], "page, segmentation only (effect=none)": [],
               "MediaPipe Python ImageSegmenter (VIDEO)": []}
    with Server(args.folder) as server:
        driver = start_browser("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                               f"--use-file-for-fake-video-capture={clip}")
        try:
            for r in range(args.rounds):
                results["page, overlay drawn"].append(
                    browser_fps(driver, server.url + "index.html?camera", args.seconds))
                results["page, segmentation only (effect=none)"].append(
                    browser_fps(driver, server.url + "index.html?camera&effect=none", args.seconds))
                results["MediaPipe Python ImageSegmenter (VIDEO)"].append(
                    python_fps(model, frames, args.seconds))
                print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in results.items()),
                      flush=True)
        finally:
            driver.quit()
        outside = server.outside()
    load1 = os.getloadavg()[0]
    shutil.rmtree(work, ignore_errors=True)
    import mediapipe
    ref = statistics.median(results["MediaPipe Python ImageSegmenter (VIDEO)"])
    version = subprocess.run([shutil.which("chromium") or "chromium", "--version"],
                             capture_output=True, text=True).stdout.strip()
    lines = [
        "# Web: the page in headless Chromium beside MediaPipe Python, same file",
        "",
        f"`python bench/web.py --folder {args.folder} --rounds {args.rounds} --seconds {args.seconds:g}`",
        "",
        f"Model: `{args.folder}/model.tflite` ({report['export']['quantize'] if report.get('export') else 'given'}"
        f", input {report['export']['input_size'] if report.get('export') else '?'}; sha256 "
        f"{report['model_sha256'][:16]}...), on CamVid's 101 val frames at 480x360. Page: "
        f"{version}, headless, {report['runtime']['package']}@{report['runtime']['version']}, "
        f"wasm CPU delegate, fake camera playing the frames at 60 frames/s. MediaPipe Python "
        f"{mediapipe.__version__}, CPU. Machine: {os.cpu_count()} CPUs ({benchlib.cpu_name()}), shared "
        f"with other jobs (load average {load0:.1f} at the start, {load1:.1f} at the end); "
        f"medians of {args.rounds} interleaved rounds of {args.seconds:g} s each.",
        "",
        "| runner | frames/s (median) | rounds | vs MediaPipe Python |",
        "|---|---:|---|---:|",
    ]
    for name, values in results.items():
        med = statistics.median(values)
        lines.append(f"| {name} | {med:.2f} | {', '.join(f'{v:.2f}' for v in values)} | {med / ref:.2f}x |")
    lines += ["", f"Requests outside the folder: {len(outside)}."]
    return benchlib.publish(args.output, lines)


if __name__ == "__main__":
    sys.exit(main())
