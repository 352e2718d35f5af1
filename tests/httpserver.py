"""A real HTTP server on 127.0.0.1 (ephemeral port) for feed tests: the `http_server` fixture
in conftest starts one. Routes are `route_<path>` methods of a handler subclass; any path put
in `server.files` is served as it is."""

import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FeedServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.hits: Counter = Counter()
        self.seen: list[tuple[str, dict, float]] = []
        self.etag = '"v1"'
        self.body = b""
        self.files: dict[str, tuple[bytes, str]] = {}
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request, client_address) -> None:
        pass  # a client that gave up on a slow route is expected


class FeedHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def send(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
        self.send_response(status)
        headers = {"Content-Length": str(len(body)), **(headers or {})}
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        server: FeedServer = self.server
        path = self.path
        server.hits[path] += 1
        server.seen.append((path, dict(self.headers), time.monotonic()))
        if path in server.files:
            body, content_type = server.files[path]
            self.send(200, body, {"Content-Type": content_type})
            return
        name = path.partition("?")[0].strip("/").replace(".", "_").replace("-", "_")
        route = getattr(self, "route_" + name)
        route(server.hits[path])


def feed_server_start(handler: type[BaseHTTPRequestHandler] = FeedHandler) -> FeedServer:
    httpd = FeedServer(handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def feed_server_stop(httpd: FeedServer) -> None:
    httpd.shutdown()
    httpd.server_close()


def trickle(handler: BaseHTTPRequestHandler, body: bytes, content_type: str) -> int:
    """Send body one byte every 0.2 s, as long as the client listens; return the bytes sent.
    The connection is closed after it."""
    handler.send_response(200)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.close_connection = True
    sent = 0
    try:
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            sent += 1
            time.sleep(0.2)
    except OSError:
        pass
    return sent
