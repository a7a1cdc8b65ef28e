"""``deeplab-keras zoo list|show NAME|download NAME``: the preset catalogue."""
import json


def add_parser(subparsers):
    parser = subparsers.add_parser("zoo", help="list, show and download pretrained presets")
    sub = parser.add_subparsers(dest="zoo_command", metavar="ACTION", required=True)
    sub.add_parser("list", help="list the presets")
    show = sub.add_parser("show", help="print a preset's catalogue entry")
    show.add_argument("name")
    get = sub.add_parser("download", help="download, verify and convert a preset's weights")
    get.add_argument("name")
    get.add_argument("--format", default=None, help="weights format (default: the preset's default)")
    get.add_argument("--allow-unpinned", action="store_true",
                     help="allow files without a pinned checksum (their sha256 is printed)")
    get.add_argument("--no-convert", action="store_true", help="only download and verify")
    return parser


def _size(entry):
    size = entry.get("size")
    return f"{size / 1e6:.1f} MB" if size else "?"


def run(args):
    from deeplab_keras import zoo

    if args.zoo_command == "list":
        rows = [("name", "architecture", "backbone", "dataset", "mIoU", "weights")]
        for name in zoo.list_presets():
            p = zoo.get_preset(name)
            entry = zoo.weight_entry(p)
            miou = (p.get("metrics") or {}).get("miou")
            rows.append((name, p["architecture"], p["config"].get("backbone", "vgg16"), p["dataset"],
                         f"{miou:.2f}" if miou else "-",
                         f"{entry['format']} {_size(entry)}" + ("" if entry.get("sha256") or
                                                                entry.get("md5") or entry.get("path")
                                                                else " (unpinned)")))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        for r in rows:
            print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        return 0
    if args.zoo_command == "show":
        preset = zoo.get_preset(args.name)
        preset["palette"] = f"<{len(preset['palette'] or [])} colours>"
        print(json.dumps(preset, indent=2))
        return 0
    if args.no_convert:
        path, _ = zoo.fetch_weights(args.name, args.format, args.allow_unpinned)
    else:
        path, _ = zoo.converted_weights(args.name, args.format, args.allow_unpinned)
    print(path)
    return 0
