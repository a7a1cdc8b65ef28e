"""Issue 12(g): the README's quick start runs exactly as written, from a folder outside the
repository, and the README still opens with the two set-up commands (.ci/run runs the second)."""
import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _readme():
    with open(os.path.join(REPO, "README.md")) as f:
        return f.read()


def quick_start_block():
    text = _readme()
    section = text[text.index("## Quick start"):]
    section = section[:section.index("\n## ", 3)]
    blocks = re.findall(r"```bash\n(.*?)```", section, re.S)
    assert blocks, "no ```bash block in the README's Quick start"
    return blocks[0]


def test_readme_opens_with_what_it_does_and_the_two_set_up_commands():
    lines = _readme().splitlines()
    head = "\n".join(lines[:16])
    assert "segments images" in head
    commands = [line for line in lines[:16] if line.startswith("pip install")]
    assert len(commands) == 2 and "main job" in commands[0] and "python -m pytest" in commands[1]
    with open(os.path.join(REPO, ".ci", "run")) as f:
        ci = f.read()
    test_command = commands[1].split("#")[0].strip()
    assert test_command in ci


@pytest.mark.skipif(shutil.which("deeplab-keras") is None,
                    reason="the deeplab-keras command is not installed (pip install -e .)")
def test_quick_start_runs_as_written_from_any_folder(tmp_path):
    script = quick_start_block()
    assert "../shared" not in script and "deeplab-keras predict" in script
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    out = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    for path in ("demo/demo_road.png", "out/demo_road_classes.png", "out/demo_road_overlay.png",
                 "out/demo_road_side.png", "out/labels.json"):
        assert (tmp_path / path).is_file(), path
    assert "deeplabv3plus_mobilenetv2_camvid" in out.stdout and "'Sky', 'Building'" in out.stdout
    assert "(360, 480)" in out.stdout  # dk.segment: the class map at the image's size
    assert "cuInit" not in out.stderr and "oneDNN" not in out.stderr, out.stderr[-2000:]
