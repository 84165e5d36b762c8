"""A local stand-in for the Hugging Face Hub's dataset endpoints, on 127.0.0.1, for `HF_ENDPOINT`.

It serves the files of dataset repos held in memory the way the hub does, enough for
`datasets.load_dataset("owner/name")` and `huggingface_hub` to resolve and download them:

- `HEAD|GET /datasets/<id>/resolve/<revision>/<path>`: the file, with the hub's `X-Repo-Commit` and
  `ETag` headers (byte ranges too); a missing file is 404 `X-Error-Code: EntryNotFound`;
- `GET /api/datasets/<id>[/revision/<revision>]`: the repo's info (sha, siblings);
- `GET /api/datasets/<id>/tree/<revision>[/<path>]`: a folder listing (`recursive` honoured);
- anything else, or another repo: 404 `RepoNotFound`.

    hub = FakeHub({"acme/toy-vqa": {"data/validation-00000-of-00001.parquet": b"..."}})
    with hub.serving() as url:            # http://127.0.0.1:PORT
        ...                               # HF_ENDPOINT=url
    hub.requests                          # ["GET /api/datasets/acme/toy-vqa/...", ...]

Only what those clients were seen to ask for (datasets 5.2, huggingface_hub 2.5) is implemented.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qs, unquote, urlsplit

SHA = "0123456789abcdef0123456789abcdef01234567"  # the one commit every repo is at


class FakeHub:
    """Dataset repos (id -> {path: bytes}) served over HTTP; see the module docstring."""

    def __init__(self, repos: dict[str, dict[str, bytes]]) -> None:
        self.repos = repos
        self.requests: list[str] = []

    @contextlib.contextmanager
    def serving(self) -> Iterator[str]:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hub.requests.append(f"{self.command} {self.path}")
                hub._answer(self)

            do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_port}"
        finally:
            server.shutdown()
            server.server_close()

    # --- answers ---------------------------------------------------------------------------
    def _answer(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        path = unquote(url.path)
        query = parse_qs(url.query)
        resolve = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        info = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        tree = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        match = resolve or tree or info
        if match is None or match.group(1) not in self.repos:
            return _send(h, 404, b"", {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
        files = self.repos[match.group(1)]
        if resolve:
            return self._file(h, files, resolve.group(3))
        if tree:
            return self._tree(h, files, (tree.group(3) or "").strip("/"), query.get("recursive", ["false"])[0] == "true")
        body = {"id": info.group(1), "_id": info.group(1), "sha": SHA, "private": False, "disabled": False, "gated": False,
                "downloads": 0, "likes": 0, "tags": [], "lastModified": "2024-01-01T00:00:00.000Z", "cardData": {},
                "siblings": [{"rfilename": name} for name in sorted(files)]}
        _send(h, 200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    def _file(self, h: BaseHTTPRequestHandler, files: dict[str, bytes], name: str) -> None:
        if name not in files:
            return _send(h, 404, b"", {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
        data = files[name]
        etag = f'"{hashlib.sha256(data).hexdigest()}"'
        headers = {"X-Repo-Commit": SHA, "ETag": etag, "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        ranged = re.fullmatch(r"bytes=(\d+)-(\d*)", h.headers.get("Range", ""))
        if ranged:
            start, end = int(ranged.group(1)), int(ranged.group(2) or len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return _send(h, 206, data[start:end + 1], headers)
        _send(h, 200, data, headers)

    def _tree(self, h: BaseHTTPRequestHandler, files: dict[str, bytes], folder: str, recursive: bool) -> None:
        prefix = f"{folder}/" if folder else ""
        entries: dict[str, dict] = {}
        for name, data in sorted(files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):].split("/")
            if len(rest) > 1:  # the folders on the way
                for depth in range(1, len(rest) if recursive else 2):
                    sub = prefix + "/".join(rest[:depth])
                    entries.setdefault(sub, {"type": "directory", "path": sub, "oid": SHA, "size": 0})
                if not recursive:
                    continue
            entries[name] = {"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
        if folder and not entries:
            return _send(h, 404, b"", {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"})
        _send(h, 200, json.dumps(list(entries.values())).encode(), {"Content-Type": "application/json"})


def _send(h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str]) -> None:
    h.send_response(code)
    for key, value in headers.items():
        h.send_header(key, value)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    if h.command != "HEAD":
        h.wfile.write(body)
