"""Parameters and multiply-adds of presets at their own input size, recorded in the preset file
(``metrics.params``, ``metrics.macs``, ``metrics.cost_source``) so ``deeplab-keras zoo list``
shows them (issue 12).

    python bench/zoo_costs.py deeplabv3plus_mobilenetv2_camvid [--write]

Counts conv/dense multiply-adds with ``deeplab_keras/utils/flops.py`` on the architecture built
without weights at ``preprocessing.input_size``."""
import argparse
import json
import os
import sys

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, HERE)  # the checkout's package, as the other bench scripts

import deeplab_keras as dk  # noqa: E402
from deeplab_keras.utils import flops  # noqa: E402
from deeplab_keras.utils.io import write_json  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("presets", nargs="+")
    parser.add_argument("--write", action="store_true", help="record them in zoo/presets/NAME.json")
    args = parser.parse_args()
    for name in args.presets:
        preset = dk.get_preset(name)
        height, width = preset["preprocessing"]["input_size"]
        model = dk.from_preset(name, weights=False, input_shape=(height, width, 3))
        count = flops.count(model)
        source = (f"python bench/zoo_costs.py {name} (deeplab_keras/utils/flops.py, conv/dense "
                  f"multiply-adds at {height}x{width})")
        print(f"{name}: {count.params} parameters, {count.mult_adds} multiply-adds at {height}x{width}")
        if args.write:
            path = os.path.join(HERE, "zoo", "presets", f"{name}.json")
            with open(path) as f:
                entry = json.load(f)
            entry.setdefault("metrics", {}).update(params=count.params, macs=count.mult_adds,
                                                   cost_source=source)
            write_json(path, entry)  # atomically
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
