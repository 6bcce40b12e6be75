"""serve: the rating page on Werkzeug's threaded WSGI server, behind a guard.

The guard answers before Flask does: 404 for any request target that could name a path outside
the study, and on a loopback bind 400 for a foreign Host header (DNS rebinding). The app is in
app.py; tests/test_study.py tries traversal, bad requests and 20 concurrent raters.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional

from frgan.data.errors import DatasetError
from reporting.study.app import create_app

DEFAULT_PORT = 8765
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
_SUSPICIOUS_RAW = ("..", "%2e", "%2f", "%5c", "%00", "%25", "\\", "//")


def is_loopback(host: str) -> bool:
    return host in LOOPBACK or host.startswith("127.")


def _suspicious_path(raw_uri: str, path_info: str) -> bool:
    """True for any request target that could name a path outside the study: traversal (`..`),
    percent-encoded dots, slashes, backslashes, NUL or '%' (double encoding), empty segments, or
    a target that is not origin-form (absolute URL, '*')."""
    raw_path = raw_uri.split("?", 1)[0].lower()
    if not raw_path.startswith("/") or any(s in raw_path for s in _SUSPICIOUS_RAW):
        return True
    return ".." in path_info or "\\" in path_info or "\x00" in path_info or "//" in path_info


class Guard:
    """WSGI middleware in front of the Flask app (see the module docstring)."""

    def __init__(self, app, check_host: bool):
        self.app, self.check_host = app, check_host

    def __call__(self, environ, start_response):
        raw = environ.get("REQUEST_URI") or environ.get("RAW_URI") or environ.get("PATH_INFO", "")
        if _suspicious_path(raw, environ.get("PATH_INFO", "")):
            return self._plain(start_response, "404 NOT FOUND", b"not found\n")
        if self.check_host:
            host = environ.get("HTTP_HOST", "")
            name = host.rsplit(":", 1)[0] if not host.startswith("[") else host.split("]")[0] + "]"
            if name not in LOOPBACK:
                return self._plain(start_response, "400 BAD REQUEST", b"bad host\n")
        return self.app(environ, start_response)

    @staticmethod
    def _plain(start_response, status: str, body: bytes):
        start_response(status, [("Content-Type", "text/plain; charset=utf-8"),
                                ("Content-Length", str(len(body)))])
        return [body]


def make_server(folder: Path, host: str = "127.0.0.1", port: int = DEFAULT_PORT,
                db_path: Optional[Path] = None):
    """Werkzeug's threaded WSGI server (one thread per connection) with the guarded study app.

    The listening socket is bound here, so a taken port is a one-line DatasetError (Werkzeug
    would print two lines and exit); port 0 picks a free one (see .server_port)."""
    import logging
    import socket
    from werkzeug.serving import make_server as _make_server
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # no line per request
    app = Guard(create_app(folder, db_path), check_host=is_loopback(host))
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        sock = socket.create_server((host.strip("[]"), port), family=family, backlog=128)
    except OSError as exc:
        raise DatasetError(f"--host {host} --port {port}: cannot listen there "
                           f"({exc.strerror or exc}); pick another --port") from None
    try:
        bound = sock.getsockname()[1]
        server = _make_server(host, bound, app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()   # the server listens on its own duplicate of the socket (socket.fromfd)
    server.server_port = bound
    return server
