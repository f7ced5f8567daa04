"""A real S3-compatible server for the tests, the benches and docker/run_action.py: moto's
server mode (its WSGI app behind werkzeug's threaded HTTP server) on 127.0.0.1, on a free port,
recording each request it answers: method, path, Range header and the bytes of its answer."""

from __future__ import annotations

import threading
from typing import Any


class S3Server:
    """Started on creation; :meth:`stop` ends it. ``env`` is what a client needs to reach it."""

    def __init__(self) -> None:
        from moto import server as moto_server
        from werkzeug.serving import WSGIRequestHandler, make_server

        class Quiet(WSGIRequestHandler):
            def log_request(self, *args: Any) -> None:     # a line per request otherwise
                pass

        app = moto_server.DomainDispatcherApplication(moto_server.create_backend_app)
        self.requests: list[tuple[str, str]] = []          # each request's method and path
        self.ranges: list[tuple[str, str | None]] = []     # each GET's path and Range header
        self.sent: list[tuple[str, int]] = []              # each GET's path and answer's bytes

        def recording(environ: dict[str, Any], start_response: Any) -> Any:
            method, path = environ["REQUEST_METHOD"], environ.get("PATH_INFO", "")
            self.requests.append((method, path))
            body = app(environ, start_response)
            if method != "GET":
                return body
            self.ranges.append((path, environ.get("HTTP_RANGE")))
            chunks = list(body)
            self.sent.append((path, sum(len(c) for c in chunks)))
            return chunks

        self.server = make_server("127.0.0.1", 0, recording, threaded=True,
                                  request_handler=Quiet)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.env = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def object_reads(self, prefix: str) -> int:
        """GETs of objects under ``/<prefix>`` (``bucket/folder/``); a listing is a GET of the
        bucket itself, not counted."""
        bucket = "/" + prefix.split("/")[0]
        return sum(1 for m, p in self.requests if m == "GET" and p.startswith(f"/{prefix}")
                   and p.rstrip("/") != bucket)

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)
