"""Issue 29: ``export --target web`` writes an offline folder that segments in a real browser.

The browser tests drive Debian's headless ``chromium`` with ``chromium-driver`` through selenium,
every host but 127.0.0.1 unresolvable, the camera a fake device playing a y4m clip (CamVid val
frames, or synthetic frames without ../shared), the folder served by ``deeplab-keras serve``'s
server in a thread. They skip, saying why, without chromium, chromedriver, selenium, mediapipe or
the MediaPipe Tasks for Web runtime (npm, or the tarball in the cache). One export of the shipped
CamVid preset at 180x240 serves the whole module."""
import glob
import hashlib
import json
import os
import shutil
import time

import numpy as np
import pytest
from PIL import Image

from deeplab_keras.web.y4m import write_y4m
from tests.conftest import CAMVID, REFERENCE, need

SIZE = "180x240"
HOST_RULES = "MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


def _browser_missing():
    """Why the browser tests cannot run here, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium; .ci/run installs it)"
    if _chromium() is None:
        return "no chromium on PATH (apt-get install chromium chromium-driver; .ci/run does)"
    if shutil.which("chromedriver") is None:
        return "no chromedriver on PATH (apt-get install chromium-driver; .ci/run does)"
    try:
        from mediapipe.tasks.python import vision  # noqa: F401
    except ImportError:
        return "mediapipe is not installed (pip install -e '.[mobile]')"
    from deeplab_keras.web import runtime
    tarball = runtime.cached_tarball()
    if shutil.which("npm") is None and not os.path.isfile(tarball):
        return f"no npm on PATH and no {runtime.TARBALL} in the cache ({tarball})"
    return None


def _frames(n, size=(180, 240)):
    """``n`` RGB frames (H, W, 3): CamVid val in name order, else synthetic moving shapes."""
    h, w = size
    files = sorted(glob.glob(str(CAMVID / "val" / "*.png")))[:n]
    if len(files) == n:
        return [np.asarray(Image.open(f).convert("RGB").resize((w, h), Image.BILINEAR)) for f in files]
    out = []
    for i in range(n):
        x = np.zeros((h, w, 3), np.uint8)
        x[: h // 2] = (128, 128, 128)
        x[h // 2:] = (128, 64, 128)
        x[h // 3: 2 * h // 3, 10 + 8 * i: 60 + 8 * i] = (64, 0, 128)
        out.append(x)
    return out


@pytest.fixture(scope="module")
def web_folder(tmp_path_factory):
    why = _browser_missing()
    if why:
        pytest.skip(why)
    from deeplab_keras import cli
    from deeplab_keras.web import runtime
    try:
        runtime.tarball(quiet=True)  # npm and the registry, or the cache
    except runtime.RuntimeUnavailable as err:
        pytest.skip(str(err))
    out = tmp_path_factory.mktemp("web") / "camvid_web"
    calib = ["--calibration", str(CAMVID / "val")] if (CAMVID / "val").is_dir() else []
    code = cli.main(["export", "--preset", "deeplabv3plus_mobilenetv2_camvid", "--target", "web",
                     "--input-size", SIZE, *calib, "--num-calibration", "4", "--num-parity", "2",
                     "--output", str(out)])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def served(web_folder):
    from deeplab_keras.web.server import Server
    with Server(web_folder) as server:
        yield server
        # the whole module: the page asked for nothing outside its folder
        assert server.outside() == []


def start_browser(*args):
    """Headless chromium with every host but 127.0.0.1 unresolvable and the network log on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = _chromium()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--mute-audio",
                f"--host-resolver-rules={HOST_RULES}", "--window-size=1000,900", *args):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(shutil.which("chromedriver")))
    driver.requested = []
    return driver


@pytest.fixture(scope="module")
def browser(web_folder, tmp_path_factory):
    """The camera a fake device playing a y4m clip, its permission granted."""
    clip = tmp_path_factory.mktemp("camera") / "clip.y4m"
    write_y4m(clip, _frames(8))
    driver = start_browser("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                           f"--use-file-for-fake-video-capture={clip}")
    yield driver
    driver.quit()


def requested_urls(driver):
    """Every URL the browser has asked for so far (the DevTools network log)."""
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            driver.requested.append(message["params"]["request"]["url"])
    return driver.requested


def assert_local(driver, server):
    bad = [u for u in requested_urls(driver)
           if not (u.startswith(server.url) or u.startswith(("data:", "blob:")))]
    assert not bad, f"the page requested outside {server.url}: {bad}"


def open_page(driver, server, query, until, timeout=60):
    driver.get(server.url + "index.html" + query)
    deadline = time.time() + timeout
    while time.time() < deadline:
        data = driver.execute_script("return Object.assign({}, document.body.dataset)")
        if until(data):
            return data
        time.sleep(0.2)
    raise AssertionError(f"{query}: page state after {timeout} s: {data}")


def shown_error(driver):
    return driver.execute_script(
        "const e = document.getElementById('error'); return e.hidden ? null : e.textContent")


# --- the folder ---------------------------------------------------------------------------------

def test_folder_holds_page_model_runtime_and_a_report_with_every_sha256(web_folder):
    from deeplab_keras.web import app, runtime
    report = app.read_report(web_folder)
    assert report["runtime"]["package"] == "@mediapipe/tasks-vision"
    assert report["runtime"]["version"] == runtime.VERSION
    assert report["runtime"]["tarball_sha256"] == runtime.TARBALL_SHA256
    on_disk = {os.path.relpath(p, web_folder).replace(os.sep, "/")
               for p in glob.glob(str(web_folder / "**"), recursive=True) if os.path.isfile(p)}
    assert on_disk - {app.REPORT} == set(report["files"])
    for rel, digest in report["files"].items():
        assert hashlib.sha256((web_folder / rel).read_bytes()).hexdigest() == digest, rel
    for rel in runtime.FILES:
        assert report["runtime"]["files"]["mediapipe/" + rel] == report["files"]["mediapipe/" + rel]
    assert {"index.html", "app.js", "model.tflite", "labels.json"} <= on_disk
    assert report["export"]["quantize"] == "int8" and report["export"]["passed"]
    labels = json.loads((web_folder / "labels.json").read_text())
    assert labels["labels"][9] == "Pedestrian" and len(labels["colors"]) == 11
    assert app.is_web_folder(web_folder)


# --- in the browser -----------------------------------------------------------------------------

def test_image_class_map_agrees_with_mediapipe_python(web_folder, served, browser):
    from deeplab_keras.export.mediapipe_gate import Segmenter
    frame = sorted(need(CAMVID / "val").glob("*.png"))[50]
    inputs = web_folder / "inputs"
    inputs.mkdir(exist_ok=True)
    shutil.copyfile(frame, inputs / "frame.png")
    data = open_page(browser, served, "?image=inputs/frame.png",
                     lambda d: d.get("state") in ("done", "error"))
    assert data["state"] == "done", data
    url = browser.execute_script("return document.getElementById('classmap').src")
    assert url.startswith("data:image/png;base64,")
    import base64
    import io
    ours = np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))[..., 0]
    image = np.asarray(Image.open(frame).convert("RGB"))
    assert ours.shape == image.shape[:2]
    with Segmenter(web_folder / "model.tflite") as seg:
        reference = seg(image)
    agreement = float(np.mean(ours == reference))
    print(f"browser vs MediaPipe Python class map agreement: {agreement:.4f}")
    assert agreement >= 0.99
    assert len(np.unique(reference)) >= 3  # a real street scene, not one class everywhere
    legend = browser.execute_script("return document.getElementById('legend').children.length")
    assert legend == len(np.unique(ours))
    assert_local(browser, served)


def test_fake_camera_segments_30_frames_and_reports_fps(served, browser):
    data = open_page(browser, served, "?camera",
                     lambda d: d.get("error") or int(d.get("frames", 0)) >= 30)
    assert "error" not in data, data["error"]
    assert int(data["frames"]) >= 30 and float(data["fps"]) > 0, data
    assert float(browser.find_element("id", "fps").text) > 0
    # closing the segmenter flushes MediaPipe's usage metrics (a POST to Google): refused
    browser.execute_script("return window.deeplab.close()")
    time.sleep(0.5)
    assert int(browser.execute_script("return document.body.dataset.blocked")) >= 1
    assert_local(browser, served)


def test_video_file_is_segmented(web_folder, served, browser, tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="needs imageio-ffmpeg to write "
                                         "the WebM clip (pip install -e '.[video]')")
    import subprocess
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, frame in enumerate(_frames(10)):
        Image.fromarray(frame).save(frames / f"{i:03d}.png")
    inputs = web_folder / "inputs"
    inputs.mkdir(exist_ok=True)
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-y", "-framerate", "15",
                    "-i", str(frames / "%03d.png"), "-c:v", "libvpx", "-b:v", "1M",
                    str(inputs / "clip.webm")], check=True, timeout=120)
    data = open_page(browser, served, "?video=inputs/clip.webm&effect=blur",
                     lambda d: d.get("error") or int(d.get("frames", 0)) >= 10)
    assert "error" not in data, data["error"]
    assert float(data["fps"]) > 0
    # temporal smoothing (confidence masks, motion gate, hysteresis) runs too
    data = open_page(browser, served, "?video=inputs/clip.webm&smooth",
                     lambda d: d.get("error") or int(d.get("frames", 0)) >= 10)
    assert "error" not in data, data["error"]
    data = open_page(browser, served, "?video=inputs/missing.webm", lambda d: d.get("state") == "error")
    assert "cannot be played" in shown_error(browser)
    assert_local(browser, served)


def test_hostile_image_urls_show_one_message(web_folder, served, browser):
    inputs = web_folder / "inputs"
    inputs.mkdir(exist_ok=True)
    (inputs / "text.png").write_text("this is not an image\n")
    Image.new("L", (8000, 6000)).save(inputs / "huge.png")  # 48 megapixels, a small file
    cases = {"inputs/missing.png": "404", "inputs/text.png": "not an image",
             "inputs/huge.png": "8000x6000", "http://example.com/a.png": "not on this page's server"}
    for url, words in cases.items():
        data = open_page(browser, served, f"?image={url}", lambda d: d.get("state") in ("done", "error"))
        assert data["state"] == "error", (url, data)
        message = shown_error(browser)
        assert words in message and "\n" not in message.strip(), (url, message)
        assert browser.execute_script("return document.getElementById('classmap').src") == ""
    assert_local(browser, served)


def test_camera_denied_shows_one_message(served):
    driver = start_browser("--use-fake-device-for-media-stream", "--deny-permission-prompts")
    try:
        data = open_page(driver, served, "?camera", lambda d: d.get("state") == "error" or
                         int(d.get("frames", 0)) > 0)
        assert "camera access was denied" in data.get("error", ""), data
        assert shown_error(driver) == data["error"]
        assert driver.find_element("id", "error").is_displayed()
        assert_local(driver, served)
    finally:
        driver.quit()


# --- without a browser: runtime cache, ownership, server, CLI ----------------------------------

def _verified_tarball():
    from deeplab_keras.web import runtime
    path = runtime.cached_tarball()
    if not os.path.isfile(path) or runtime._sha256(path) != runtime.TARBALL_SHA256:
        pytest.skip(f"no verified {runtime.TARBALL} in the cache (an export with npm puts it there)")
    return path


def test_cached_runtime_is_used_without_npm(tmp_path, monkeypatch):
    from deeplab_keras import download
    from deeplab_keras.web import runtime
    tarball = _verified_tarball()
    cache = tmp_path / "cache"
    (cache / "npm").mkdir(parents=True)
    shutil.copyfile(tarball, cache / "npm" / runtime.TARBALL)
    monkeypatch.setenv(download.CACHE_ENV, str(cache))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    got = runtime.vendor(tmp_path / "out", quiet=True)
    assert set(got["files"]) == set(runtime.FILES)
    assert got["files"]["vision_bundle.mjs"] == hashlib.sha256(
        (tmp_path / "out" / "vision_bundle.mjs").read_bytes()).hexdigest()
    # a damaged cached file is not used: without npm that is one clear line
    with open(cache / "npm" / runtime.TARBALL, "r+b") as f:
        f.seek(1000)
        f.write(b"tampered")
    with pytest.raises(runtime.RuntimeUnavailable) as err:
        runtime.tarball(quiet=True)
    assert "npm is not on PATH" in str(err.value) and "\n" not in str(err.value)


def test_no_npm_is_one_clear_line(tmp_path, monkeypatch, capsys):
    from deeplab_keras import download
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    from deeplab_keras.web import runtime
    with pytest.raises(runtime.RuntimeUnavailable, match=r"npm is not on PATH; install Node.js"):
        runtime.tarball(quiet=True)
    # the command stops on it before loading or exporting anything, with one line
    from deeplab_keras import cli
    from deeplab_keras.commands import export as export_command
    monkeypatch.setattr(export_command.loader, "load_model", lambda *a, **k: pytest.fail("work started"))
    assert cli.main(["export", "--preset", "deeplabv3plus_mobilenetv2_camvid", "--target", "web",
                     "--input-size", "64", "--output", str(tmp_path / "web")]) == 1
    err = capsys.readouterr().err.strip()
    assert "npm is not on PATH" in err and len(err.splitlines()) == 1, err
    assert not (tmp_path / "web").exists()


@pytest.mark.skipif(shutil.which("npm") is None, reason="npm is not installed")
def test_unreachable_registry_is_one_clear_line(tmp_path, monkeypatch):
    from deeplab_keras import download
    from deeplab_keras.web import runtime
    monkeypatch.setenv(download.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("npm_config_registry", "http://127.0.0.1:9/")  # nothing listens there
    monkeypatch.setenv("npm_config_cache", str(tmp_path / "npm-cache"))
    monkeypatch.setenv("npm_config_fetch_retries", "0")
    monkeypatch.setenv("npm_config_offline", "false")
    with pytest.raises(runtime.RuntimeUnavailable) as err:
        runtime.tarball(quiet=True)
    text = str(err.value)
    assert "npm pack failed" in text and "\n" not in text and runtime.TARBALL_SHA256 in text
    assert not os.listdir(tmp_path / "cache" / "npm")  # nothing half-written in the cache


def test_export_takes_a_mediapipe_tflite_as_it_is(web_folder, tmp_path, capsys):
    from deeplab_keras import cli
    from deeplab_keras.web import app
    model = web_folder / "model.tflite"
    out = tmp_path / "again"
    assert cli.main(["export", "--weights", str(model), "--target", "web", "--input-size", "64",
                     "--output", str(out)]) == 0
    report = app.read_report(out)
    assert report["model_sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert report["source"] == str(model) and report["labels"][9] == "Pedestrian"
    assert app.is_web_folder(out)
    # the folder's export report names the final folder, not the staging one it was written in
    assert ".tmp" not in (web_folder / "model.json").read_text()
    capsys.readouterr()
    # a .tflite MediaPipe cannot run (no metadata): one line, nothing written
    plain = need(REFERENCE / "deeplabv3_mnv2_pascal_quant.tflite")
    assert cli.main(["export", "--weights", str(plain), "--target", "web", "--input-size", "64",
                     "--output", str(tmp_path / "plain")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(err) == 1 and "outputs int64 [1, 513, 513]" in err[0], err
    assert "MediaPipe-compatible .tflite" in err[0]
    assert sorted(os.listdir(tmp_path)) == ["again"]


def _fake_web_folder(path):
    from deeplab_keras.utils import io
    from deeplab_keras.web import app
    path.mkdir()
    (path / "index.html").write_text("<p>page</p>")
    io.write_json(path / app.REPORT, {"kind": app.KIND, "files": {"index.html": "x"}})
    return path


def test_web_folder_ownership(tmp_path):
    from deeplab_keras.utils.io import OutputExistsError
    from deeplab_keras.web import app
    ours = _fake_web_folder(tmp_path / "ours")
    app.check_output(ours)  # ours: may be replaced
    (ours / "notes.txt").write_text("mine")  # something added since: no longer ours
    with pytest.raises(OutputExistsError, match="--overwrite"):
        app.check_output(ours)
    app.check_output(ours, overwrite=True)
    foreign = tmp_path / "site"
    foreign.mkdir()
    (foreign / "index.html").write_text("<p>someone's site</p>")
    with pytest.raises(OutputExistsError):
        app.check_output(foreign)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputExistsError, match="writes a folder"):
        app.check_output(tmp_path / "file")


def test_staging_replaces_our_folder_only_when_all_went_well(tmp_path):
    from deeplab_keras.web import app
    ours = _fake_web_folder(tmp_path / "ours")
    with pytest.raises(RuntimeError):
        with app.staging(ours) as stage:
            (tmp_path / stage / "index.html").write_text("new")
            raise RuntimeError("the export failed")
    assert (ours / "index.html").read_text() == "<p>page</p>"
    assert sorted(os.listdir(tmp_path)) == ["ours"]  # the staging folder is gone
    with app.staging(ours) as stage:
        (tmp_path / stage / "index.html").write_text("new")
    assert (ours / "index.html").read_text() == "new" and sorted(os.listdir(tmp_path)) == ["ours"]


def test_export_refuses_a_foreign_folder_before_loading(tmp_path, capsys):
    from deeplab_keras import cli
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text("<p>someone's site</p>")
    code = cli.main(["export", "--preset", "deeplabv3plus_mobilenetv2_camvid", "--target", "web",
                     "--input-size", "64", "--output", str(site)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "not a previous deeplab-keras export" in err and len(err.splitlines()) == 1
    assert (site / "index.html").read_text() == "<p>someone's site</p>"
    assert sorted(os.listdir(tmp_path)) == ["site"]  # no staging folder left


def test_export_web_refuses_a_bad_input_size_before_loading(tmp_path, capsys, monkeypatch):
    from deeplab_keras import cli
    from deeplab_keras.commands import export as export_command
    monkeypatch.setattr(export_command.loader, "load_model", lambda *a, **k: pytest.fail("work started"))
    assert cli.main(["export", "--preset", "deeplabv3plus_mobilenetv2_camvid", "--target", "web",
                     "--input-size", "0", "--output", str(tmp_path / "web")]) == 1
    assert "--input-size takes N, H W or HxW" in capsys.readouterr().err
    assert not os.listdir(tmp_path)


def test_server_serves_only_the_folder(tmp_path):
    import urllib.error
    import urllib.request

    from deeplab_keras.web.server import Server
    folder = tmp_path / "site"
    (folder / "wasm").mkdir(parents=True)
    (folder / "wasm" / "a.wasm").write_bytes(b"\0asm")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(tmp_path / "secret.txt", folder / "link.txt")
    with Server(folder) as server:
        with urllib.request.urlopen(server.url + "wasm/a.wasm") as r:
            assert r.headers["Content-Type"] == "application/wasm"
        for path in ("link.txt", "../secret.txt", "%2e%2e/secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(server.url + path)
            assert err.value.code == 404
        assert server.url.startswith("http://127.0.0.1:")
        assert [e[1] for e in server.outside()] == ["/link.txt", "/../secret.txt", "/%2e%2e/secret.txt"]


def test_serve_command_one_line_errors(tmp_path, capsys):
    from deeplab_keras import cli
    assert cli.main(["serve", str(tmp_path / "nope")]) == 1
    err = capsys.readouterr().err.strip()
    assert "is not a folder" in err and len(err.splitlines()) == 1
    assert cli.main(["serve", str(tmp_path)]) == 1
    assert "has no index.html" in capsys.readouterr().err
