"""A small in-process registry that follows the OCI distribution spec's upload status, the way
distribution 3.x does: an interrupted PATCH keeps what arrived, and GET on the upload location
answers `Range: 0-<last byte>`. It can cut PATCH requests after N bytes, like a dropping link."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeRegistry:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}  # digest -> data (one namespace is enough here)
        self.uploads: dict[str, bytearray] = {}
        self.cut_patch_after: int | None = None  # bytes of a PATCH body accepted before the connection drops
        self.cuts_left = 0
        self.received = 0  # bytes of blob data received over all PATCH and PUT bodies
        self.refuse_patch = False  # like registries that take only monolithic uploads
        self.refuse_put_body = False  # like registries that take only chunked uploads
        self.lock = threading.Lock()
        registry = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _reply(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_HEAD(self) -> None:
                if "/manifests/" in self.path:
                    self._reply(404)
                    return
                match = re.match(r"^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$", self.path)
                if match and match.group(2) in registry.blobs:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(registry.blobs[match.group(2)])))
                    self.end_headers()
                else:
                    self._reply(404)

            def do_POST(self) -> None:
                session = uuid.uuid4().hex
                registry.uploads[session] = bytearray()
                self._reply(202, {"Location": f"/v2/repo/blobs/uploads/{session}", "Range": "0-0"})

            def _session(self) -> str:
                return self.path.split("?")[0].rsplit("/", 1)[1]

            def do_GET(self) -> None:
                session = self._session()
                if session not in registry.uploads:
                    self._reply(404)
                    return
                size = len(registry.uploads[session])
                self._reply(204, {"Location": f"/v2/repo/blobs/uploads/{session}",
                                  "Range": f"0-{max(size - 1, 0)}"})

            def do_PATCH(self) -> None:
                if registry.refuse_patch:
                    self.rfile.read(int(self.headers["Content-Length"]))
                    self._reply(405)
                    return
                session = self._session()
                if session not in registry.uploads:
                    self._reply(404)
                    return
                start = int(self.headers["Content-Range"].split("-")[0])
                data = registry.uploads[session]
                if start != len(data):
                    self._reply(416, {"Range": f"0-{len(data) - 1}"})
                    return
                length = int(self.headers["Content-Length"])
                with registry.lock:
                    cut = registry.cut_patch_after is not None and registry.cuts_left > 0
                    if cut:
                        registry.cuts_left -= 1
                if cut and length > registry.cut_patch_after:
                    part = self.rfile.read(registry.cut_patch_after)
                    data.extend(part)
                    registry.received += len(part)
                    self.close_connection = True
                    self.connection.shutdown(2)  # the link dropped: no answer
                    return
                body = self.rfile.read(length)
                data.extend(body)
                registry.received += len(body)
                self._reply(202, {"Location": f"/v2/repo/blobs/uploads/{session}", "Range": f"0-{len(data) - 1}"})

            def do_PUT(self) -> None:
                session = self._session()
                digest = re.search(r"digest=(sha256:[0-9a-f]{64})", self.path).group(1)
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if body and registry.refuse_put_body:
                    self._reply(415)
                    return
                registry.received += len(body)
                data = registry.uploads.pop(session) + body
                if "sha256:" + hashlib.sha256(data).hexdigest() != digest:
                    self._reply(400, {"Content-Type": "application/json"},
                                b'{"errors": [{"code": "DIGEST_INVALID", "message": "digest did not match"}]}')
                    return
                registry.blobs[digest] = bytes(data)
                self._reply(201, {"Location": f"/v2/repo/blobs/{digest}", "Docker-Content-Digest": digest})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
