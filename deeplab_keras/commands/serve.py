"""``deeplab-keras serve DIR``: serve a folder ``export --target web`` wrote on 127.0.0.1 and print
its URL (a quick look; any static server works). Files outside the folder are never served.

    deeplab-keras serve camvid_web --port 8000
"""
import os


def add_parser(subparsers):
    p = subparsers.add_parser("serve", help="serve an `export --target web` folder on 127.0.0.1")
    p.add_argument("folder", help="the folder export --target web wrote")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    p.add_argument("--log", action="store_true", help="print every request")
    return p


def run(args):
    from deeplab_keras.web.server import Server

    if not os.path.isdir(args.folder):
        raise FileNotFoundError(f"{args.folder} is not a folder; give the folder export --target "
                                "web wrote (deeplab-keras export ... --target web --output DIR)")
    if not os.path.isfile(os.path.join(args.folder, "index.html")):
        raise FileNotFoundError(f"{args.folder} has no index.html; give the folder export --target "
                                "web wrote")
    if not 0 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port number; give 0-65535 (0 picks a free one)")
    server = Server(args.folder, port=args.port, verbose=args.log)
    print(f"serving {os.path.abspath(args.folder)} at {server.url} (127.0.0.1 only; Ctrl-C stops)",
          flush=True)
    print(f"camera: {server.url}?camera   image: {server.url}?image=FILE-IN-THE-FOLDER", flush=True)
    server.wait()
    return 0
