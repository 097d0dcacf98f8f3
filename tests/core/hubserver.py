"""A tiny fake Hugging Face Hub on 127.0.0.1 for download tests (point ``HF_ENDPOINT`` at ``hub.url``).

It answers ``HEAD`` and ``GET`` for ``/{repo_id}/resolve/{revision}/{filename}`` with the headers
``huggingface_hub`` needs (``X-Repo-Commit``, ``ETag`` / ``X-Linked-Etag`` as the quoted sha256 of
the content, ``Content-Length``), 404 with ``X-Error-Code: EntryNotFound`` / ``RepoNotFound`` for
what it does not have, honours ``Range: bytes=N-``, records every request, and can send bodies
slowly in chunks so a cancel can land mid-download.

It is a plain module, not a test. pytest runs with ``--import-mode=importlib``, so test folders are
not on ``sys.path``: test files load it by path (see ``tests/core/test_weights.py``).
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_RESOLVE = re.compile(r"^/(?P<repo>.+?)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def filename(self) -> str:
        m = _RESOLVE.match(self.path)
        return unquote(m["file"]) if m else ""


@dataclass
class FakeHub:
    """Start with :meth:`start` (or ``with FakeHub() as hub``); ``files[(repo_id, filename)] = bytes``."""

    files: dict[tuple[str, str], bytes] = field(default_factory=dict)
    #: Body chunk size and the pause after each chunk (0: as fast as the socket takes it).
    chunk_size: int = 1 << 20
    chunk_delay: float = 0.0
    #: When set, every request gets this status and no body (a hub that is down: 500, 503...).
    fail_status: int | None = None
    requests: list[Request] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, repo_id: str, filename: str, data: bytes) -> None:
        self.files[(repo_id, filename)] = data

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def gets(self, filename: str | None = None) -> list[Request]:
        """The GET requests so far, optionally only those for ``filename``."""
        with self._lock:
            return [r for r in self.requests if r.method == "GET" and filename in (None, r.filename)]

    def start(self) -> FakeHub:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep pytest output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def do_GET(self) -> None:
                self._answer(body=True)

            def _answer(self, body: bool) -> None:
                path = urlsplit(self.path).path
                with hub._lock:
                    hub.requests.append(Request(self.command, path, dict(self.headers.items())))
                if hub.fail_status is not None:
                    self.send_response(hub.fail_status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return None
                m = _RESOLVE.match(path)
                if not m:
                    return self._error(404, "RepoNotFound")
                repo, filename = m["repo"], unquote(m["file"])
                data = hub.files.get((repo, filename))
                if data is None:
                    known_repo = any(r == repo for r, _ in hub.files)
                    return self._error(404, "EntryNotFound" if known_repo else "RepoNotFound")
                etag = f'"{hashlib.sha256(data).hexdigest()}"'
                start = 0
                rng = _RANGE.match(self.headers.get("Range", ""))
                if body and rng and int(rng[1]) < len(data):
                    start = int(rng[1])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", etag)
                self.send_header("X-Linked-Etag", etag)
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                if not body:
                    return
                view = memoryview(data)
                try:
                    for i in range(start, len(data), hub.chunk_size):
                        self.wfile.write(view[i : i + hub.chunk_size])
                        if hub.chunk_delay:
                            self.wfile.flush()
                            time.sleep(hub.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client went away (a cancelled download)

            def _error(self, status: int, code: str) -> None:
                msg = f"{code}: {self.path}".encode()
                self.send_response(status)
                self.send_header("X-Error-Code", code)
                self.send_header("X-Error-Message", code)
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(msg)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(msg)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-hf-hub")
        self._thread.start()
        return self

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
