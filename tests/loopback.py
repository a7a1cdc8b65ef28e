"""One HTTP server on 127.0.0.1 for the download tests (test_download, test_faults, test_zoo,
test_tflite_structural): serves bytes it is given, misbehaving on purpose where asked, and
records every request. Bounded: it only answers, the tests' clients make a bounded number of
requests, and ``close()`` stops it."""
import hashlib
import http.server
import threading
import time

#: ``behaviour`` values: how a file is served
BEHAVIOURS = {
    "cut_once": "the first reply is cut in the middle",
    "always_cut": "every reply is cut in the middle",
    "no_range": "Range requests ignored (200, whole file)",
    "cut_once_no_range": "both of the above",
    "short": "consistent headers, half the content",
    "bad_range": "a Range request answered 206 from byte 0 (first reply cut)",
    "no_content_range": "206 without Content-Range (first reply cut)",
    "slow": "the body in 10 slices, 50 ms apart",
    "drip": "one byte every 50 ms (at most 200 bytes, then the connection is closed)",
    "endless": "no Content-Length, the body repeated until the client leaves (at most 64 MiB)",
    "bad_length": "Content-Length: abc",
}


def _key(path):
    return "/" + path.lstrip("/")


class Server:
    """Serves ``files`` ({path: bytes}; paths with or without the leading '/'), each as its
    ``behaviour`` says (:data:`BEHAVIOURS`); ``requests`` records ('/path', Range header)."""

    def __init__(self):
        self.files, self.behaviour, self.requests = {}, {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                name, rng = _key(self.path), self.headers.get("Range")
                outer.requests.append((name, rng))
                if name not in outer.files:
                    self.send_error(404)
                    return
                data, mode = outer.files[name], outer.behaviour.get(name, "")
                first = outer.gets(name) == 1
                if mode in ("drip", "endless", "bad_length"):
                    self._misbehave(mode, data)
                    return
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if rng and "no_range" in mode:
                    self.send_response(200)
                    start = 0
                elif rng and mode == "bad_range":
                    self.send_response(206)  # claims partial content, sends it all from byte 0
                    self.send_header("Content-Range", f"bytes 0-{len(data) - 1}/{len(data)}")
                    start = 0
                elif rng and mode == "no_content_range":
                    self.send_response(206)
                elif rng:
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                if mode == "short":
                    body = body[: len(body) // 2]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                cut_first = mode in ("cut_once", "cut_once_no_range", "bad_range", "no_content_range")
                if mode == "always_cut" or (first and cut_first):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    self.close_connection = True
                    return
                if mode == "slow":
                    step = len(body) // 10 + 1
                    for i in range(0, len(body), step):
                        self.wfile.write(body[i:i + step])
                        self.wfile.flush()
                        time.sleep(0.05)
                    return
                self.wfile.write(body)

            def _misbehave(self, mode, body):
                self.send_response(200)
                if mode == "bad_length":
                    self.send_header("Content-Length", "abc")
                self.send_header("Connection", "close")
                self.end_headers()
                self.close_connection = True
                try:
                    if mode == "drip":
                        for i in range(min(len(body), 200)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.05)
                    elif mode == "endless":
                        for _ in range(64 * 2**20 // max(1, len(body))):
                            self.wfile.write(body)
                    else:
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped reading: what the test wants

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path, data, behaviour=None):
        if behaviour is not None and behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}")
        self.files[_key(path)] = data
        if behaviour:
            self.behaviour[_key(path)] = behaviour
        return hashlib.sha256(data).hexdigest()

    def gets(self, path):
        return sum(1 for n, _ in self.requests if n == _key(path))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
