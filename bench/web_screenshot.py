"""The screenshot on docs/web.md: the exported page in headless Chromium, colour overlay with its
legend on a CamVid val frame (``?image=``), every host but 127.0.0.1 unresolvable.

    python bench/web_screenshot.py --folder runs/web/camvid_web

The folder is what ``python bench/web.py`` exports (``export --target web`` at 360x480); it is
copied to a temporary folder with the frame beside the page, so the export itself is left as it was.
Writes ``docs/web_screenshot.png`` (``--output``) and prints the page's status line.
"""
import os
import shutil
import sys
import tempfile

import benchlib
from web import CAMVID, start_browser, wait_for


def main():
    p = benchlib.parser(__doc__, "unused", timing=False)
    p.set_defaults(output=os.path.join(benchlib.HERE, "..", "docs", "web_screenshot.png"))
    p.add_argument("--folder", default="runs/web/camvid_web")
    p.add_argument("--frame", default="0016E5_08085.png", help="a file of CamVid's val/")
    p.add_argument("--query", default="&opacity=0.6", help="more page options")
    args = p.parse_args()
    frame = os.path.join(CAMVID, "val", args.frame)
    if benchlib.missing(frame, "CamVid"):
        return 0
    from deeplab_keras.utils.io import atomic_path
    from deeplab_keras.web.app import read_report
    from deeplab_keras.web.server import Server
    if read_report(args.folder) is None:
        raise SystemExit(f"{args.folder} is not a folder export --target web wrote "
                         "(python bench/web.py makes one)")
    work = tempfile.mkdtemp(prefix="bench_web_shot_")
    try:
        site = os.path.join(work, "site")
        shutil.copytree(args.folder, site)
        shutil.copyfile(frame, os.path.join(site, "frame.png"))
        with Server(site) as server:
            driver = start_browser(window="820,900")
            try:
                driver.get(server.url + "index.html?image=frame.png" + args.query)
                wait_for(driver, lambda d: d.get("state") == "done")
                status = driver.find_element("id", "status").text
                with atomic_path(args.output, suffix=".png") as tmp:
                    driver.save_screenshot(tmp)
            finally:
                driver.quit()
            outside = server.outside()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"{os.path.normpath(args.output)}: {status}; requests outside the folder: {len(outside)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
