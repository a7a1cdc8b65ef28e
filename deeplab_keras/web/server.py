"""A static file server for an exported web folder, on 127.0.0.1 only (``deeplab-keras serve``;
any static server works). It serves files inside the folder and nothing else: a path that
resolves outside it (``..``, a link) is answered 404, and every request is recorded in
:attr:`Server.log` as ``(method, path, status, inside)`` so tests can check what the page asked."""
import functools
import http.server
import os
import threading
import urllib.parse

#: types Python's mimetypes may not know; the wasm loader needs ``application/wasm``
TYPES = {".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm",
         ".json": "application/json", ".tflite": "application/octet-stream",
         ".y4m": "application/octet-stream"}


class _Handler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **TYPES}

    def __init__(self, *args, owner=None, **kwargs):
        self.owner = owner
        super().__init__(*args, directory=owner.folder, **kwargs)

    def _inside(self):
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        real = os.path.realpath(os.path.join(self.owner.folder, path.lstrip("/")))
        return real == self.owner.folder or real.startswith(self.owner.folder + os.sep)

    def send_head(self):
        if not self._inside():
            self.send_error(404, "outside the served folder")
            return None
        return super().send_head()

    def end_headers(self):
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_request(self, code="-", size="-"):
        code = getattr(code, "value", code)
        with self.owner._lock:
            self.owner.log.append((self.command, self.path, int(code) if str(code).isdigit() else code,
                                   self._inside()))
        if self.owner.verbose:
            super().log_request(code, size)

    def log_message(self, format, *args):
        if self.owner.verbose:
            super().log_message(format, *args)


class Server:
    """``Server(folder, port=0)``: serving in a background thread from construction;
    :attr:`url`, :attr:`log`, :meth:`close` (also a context manager)."""

    def __init__(self, folder, port=0, verbose=False):
        folder = os.path.realpath(os.fspath(folder))
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"{folder} is not a folder; pass the folder export --target "
                                    "web wrote")
        self.folder, self.verbose, self.log, self._lock = folder, verbose, [], threading.Lock()
        handler = functools.partial(_Handler, owner=self)
        try:
            self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        except OSError as err:
            raise OSError(f"cannot listen on 127.0.0.1:{port} ({err.strerror or err}); pass "
                          "another --port (0 picks a free one)") from None
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def outside(self):
        """Requests whose path resolved outside the folder (should be none)."""
        with self._lock:
            return [entry for entry in self.log if not entry[3]]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(5)

    def wait(self):
        """Block until interrupted (Ctrl-C), then close."""
        try:
            self._thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
