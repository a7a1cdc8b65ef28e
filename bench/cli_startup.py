"""Start-up time of the light commands against ``import tensorflow`` (issue 12).

    python bench/cli_startup.py [--repeat 5]

Each command runs in a fresh interpreter; the best of ``--repeat`` wall-clock runs is reported,
with the machine's CPU count (the numbers depend on the machine and its load)."""
import argparse
import os
import subprocess
import sys
import time

COMMANDS = {
    "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"],
    "python -c 'import deeplab_keras'": [sys.executable, "-c", "import deeplab_keras"],
    "deeplab-keras --help": [sys.executable, "-m", "deeplab_keras", "--help"],
    "deeplab-keras zoo list": [sys.executable, "-m", "deeplab_keras", "zoo", "list"],
    "deeplab-keras zoo show NAME": [sys.executable, "-m", "deeplab_keras", "zoo", "show",
                                    "deeplabv3plus_mobilenetv2_camvid"],
}


def best_of(cmd, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t)
    return min(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = {name: best_of(cmd, args.repeat) for name, cmd in COMMANDS.items()}
    base = results["python -c 'import tensorflow'"]
    print(f"best of {args.repeat} runs, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print("| command | seconds | share of `import tensorflow` |\n|---|---|---|")
    for name, seconds in results.items():
        print(f"| `{name}` | {seconds:.2f} | {seconds / base:.0%} |")


if __name__ == "__main__":
    main()
