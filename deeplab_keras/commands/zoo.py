"""``deeplab-keras zoo list|show NAME|download NAME``: the preset catalogue."""


def add_parser(subparsers):
    parser = subparsers.add_parser("zoo", help="list, show and download pretrained presets")
    sub = parser.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list the presets")
    show = sub.add_parser("show", help="print a preset's model card")
    show.add_argument("name")
    show.add_argument("--json", action="store_true", help="print the catalogue entry as JSON")
    get = sub.add_parser("download", help="download, verify and convert a preset's weights")
    get.add_argument("name")
    get.add_argument("--format", default=None, help="weights format (default: the preset's default)")
    get.add_argument("--allow-unpinned", action="store_true",
                     help="allow files without a pinned checksum (their sha256 is printed)")
    get.add_argument("--no-convert", action="store_true", help="only download and verify")
    return parser


#: optional catalogue fields the table shows when a preset records them (never computed here)
OPTIONAL = (("params", "parameters"), ("macs", "multiply-adds"), ("int8_latency_ms", "int8 ms"))


def _size(entry):
    size = entry.get("size")
    return f"{size / 1e6:.1f} MB" if size else "-"


def _count(n):
    if not isinstance(n, (int, float)):
        return "-"
    for div, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if n >= div:
            return f"{n / div:.1f}{unit}"
    return str(n)


def _default_weights(p):
    entries = p.get("weights") or [{}]
    return next((e for e in entries if e.get("default")), entries[0])


def _accuracy(metrics):
    miou = metrics.get("miou")
    if not isinstance(miou, (int, float)):
        return "-"
    text = f"{miou:.1f} mIoU" + (f" ({metrics['split']})" if metrics.get("split") else "")
    if metrics.get("trained_on"):  # the weights trained on that split: the figure is the recipe's
        text += "*"
    return text


def table_rows(names, card):
    """Header + one row per preset, from the catalogue entries only ('-' where not recorded)."""
    rows = [("name", "task / dataset", "classes", "input", "parameters", "multiply-adds",
             "accuracy (split)", "file", "int8 ms")]
    for name in names:
        p = card(name)
        metrics = p.get("metrics") or {}
        size = (p.get("preprocessing") or {}).get("input_size")
        task = "backbone" if p.get("backbone_only") else "segmentation"
        entry = _default_weights(p)
        pinned = entry.get("sha256") or entry.get("md5") or entry.get("path")
        rows.append((name, f"{task} / {p.get('dataset') or '-'}",
                     str(p["config"].get("num_classes") or "-"),
                     f"{size[0]}x{size[1]}" if size else "-",
                     _count(metrics.get("params")), _count(metrics.get("macs")),
                     _accuracy(metrics), _size(entry) + ("" if pinned else " (unpinned)"),
                     f"{metrics['int8_latency_ms']:.1f}" if isinstance(metrics.get("int8_latency_ms"),
                                                                  (int, float)) else "-"))
    return rows


def format_table(rows):
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _swatch(rgb, colour):
    """A coloured block for terminals (plain text when not a terminal or NO_COLOR is set)."""
    if not colour:
        return ""
    r, g, b = rgb
    return f"\x1b[48;2;{r};{g};{b}m  \x1b[0m "


def model_card(p, colour=False):
    """The text ``zoo show`` prints: what it is, where it comes from, its labels and colours,
    its metrics with how they were measured, and the commands to use and reproduce it."""
    name = p["name"]
    entry = _default_weights(p)
    metrics = p.get("metrics") or {}
    size = (p.get("preprocessing") or {}).get("input_size")
    config = p.get("config") or {}
    lines = [f"{name}", "=" * len(name), p.get("description") or "", "",
             f"architecture:   {p['architecture']} ({', '.join(f'{k}={v}' for k, v in config.items())})",
             f"dataset:        {p.get('dataset') or '-'}",
             f"input size:     {f'{size[0]}x{size[1]} (height x width)' if size else '-'}",
             f"preprocessing:  {(p.get('preprocessing') or {}).get('normalization', '-')}, resize "
             f"{(p.get('preprocessing') or {}).get('resize', 'align_corners')}",
             f"weights:        {entry.get('file')} ({entry.get('format')}, {_size(entry)})",
             f"source:         {entry.get('path') and 'shipped in the package: ' + entry['path'] or entry.get('url') or '-'}",
             f"checksum:       {'sha256 ' + entry['sha256'] if entry.get('sha256') else 'md5 ' + entry['md5'] if entry.get('md5') else 'none pinned'}",
             f"licence:        {p.get('license') or _licence(p)}",
             f"parameters:     {_count(metrics.get('params'))}, multiply-adds "
             f"{_count(metrics.get('macs'))}" + (f" ({metrics['cost_source']})"
                                                 if metrics.get("cost_source") else ""),
             "int8 latency:   " + (f"{metrics['int8_latency_ms']:.1f} ms ("
                                   f"{metrics.get('int8_latency_source') or 'source not recorded'})"
                                   if isinstance(metrics.get("int8_latency_ms"), (int, float))
                                   else "- (not measured)"), ""]
    if metrics.get("miou") is not None:
        lines.append(f"accuracy:       {_accuracy(metrics)}")
        if metrics.get("miou_8bit") is not None:
            lines.append(f"                {metrics['miou_8bit']:.1f} mIoU 8-bit")
        if metrics.get("miou_scales_flip") is not None:
            tta = metrics.get("scales_flip") or {}
            lines.append(f"                {metrics['miou_scales_flip']:.1f} mIoU with scales "
                         f"{' '.join(str(s) for s in tta.get('scales', [])) or '-'}"
                         f"{' + flip' if tta.get('flip') else ''} (predict/evaluate --scales --flip)")
            if tta.get("source"):
                lines.append(f"                  measured by: {tta['source']}")
        if metrics.get("evidence"):
            lines.append(f"                * {metrics['evidence']}")
        if metrics.get("source"):
            lines.append(f"measured by:    {metrics['source']}")
        if metrics.get("trained_on"):
            lines.append(f"trained on:     {metrics['trained_on']}; these weights score "
                         f"{metrics.get('trained_on_val_miou', '-')} mIoU on val, which they trained on "
                         "(not held out)")
        lines.append("")
    else:
        lines += ["accuracy:       - (not recorded)", ""]
    labels = p.get("labels")
    palette = p.get("palette") or []
    if labels and not p.get("backbone_only"):
        per_class = metrics.get("per_class_iou") or {}
        lines.append(f"labels ({len(labels)}):     index  colour (r, g, b)   name" +
                     ("  IoU" if per_class else ""))
        for i, label in enumerate(labels):
            rgb = tuple(palette[i]) if i < len(palette) else (0, 0, 0)
            iou = per_class.get(label)
            lines.append(f"  {_swatch(rgb, colour)}{i:>5}  {str(rgb):<17} {label}" +
                         (f"  {iou:.1f}" if isinstance(iou, (int, float)) else ""))
        if p.get("ignore_label") is not None:
            lines.append(f"  ignore label: {p['ignore_label']}")
        lines.append("")
        lines += ["use:", f"  deeplab-keras predict --preset {name} --output-dir out IMAGE...",
                  f"  deeplab-keras evaluate --preset {name} --dataset {p.get('dataset') or 'folder'} --data-root DATA_ROOT",
                  export_command(name, p)]
    else:
        lines += ["use (a backbone: give the number of classes of your head):",
                  f"  python -c \"import deeplab_keras as dk; dk.from_preset('{name}', num_classes=5)\""]
    if metrics.get("source", "").startswith("measured:"):
        lines += ["reproduce:", "  " + metrics["source"][len("measured:"):].strip()]
    return "\n".join(lines).rstrip() + "\n"


def export_command(name, p):
    """The export line of a preset's card (runs as printed: tested)."""
    size = (p.get("preprocessing") or {}).get("input_size") or [513, 513]
    return (f"  deeplab-keras export --preset {name} --format tflite --input-size "
            f"{size[0]}x{size[1]} --output export/{name}.tflite")


def _licence(p):
    """Licence of the weights as the catalogue's source says (Google's checkpoints and
    keras.applications are Apache-2.0; our own trained files follow the repository's)."""
    entry = _default_weights(p)
    if entry.get("path"):
        return "Apache-2.0 (trained in this repository)"
    url = entry.get("url") or ""
    if "keras-applications" in url:
        return "Apache-2.0 (keras.applications)"
    if "download.tensorflow.org" in url:
        return "Apache-2.0 (Google, TensorFlow model garden)"
    return "see the source"


def run(args):
    import json
    import os
    import sys

    from deeplab_keras.hub import zoo

    if args.zoo_command == "list":
        rows = table_rows(zoo.preset_names(), zoo.preset_card)
        print(format_table(rows))
        if any(r[6].endswith("*") for r in rows[1:]):
            print("\n* the recipe's score on a split these weights did not train on; the shipped "
                  "weights also trained on that split (zoo show NAME)")
        print("\nparameters, multiply-adds and int8 latency show '-' where the catalogue does not "
              "record them; `deeplab-keras zoo show NAME` prints a model card")
        return 0
    if args.zoo_command == "show":
        if args.json:
            print(json.dumps(zoo.preset_card(args.name), indent=2))
            return 0
        colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        print(model_card(zoo.preset_card(args.name), colour), end="")
        return 0
    if args.no_convert:
        path, _ = zoo.fetch_weights(args.name, args.format, args.allow_unpinned)
    else:
        from deeplab_keras.hub.converted import converted_weights
        path, _ = converted_weights(args.name, args.format, args.allow_unpinned)
    print(path)
    return 0
