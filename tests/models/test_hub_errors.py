"""Hub access errors are one line (which model, why, what to do), exit 2, tested against a local
fake hub on 127.0.0.1 (HF_ENDPOINT) and the offline cache, never the network."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class FakeHub(BaseHTTPRequestHandler):
    """Answers like the hub: gated repos 401/403 with X-Error-Code GatedRepo, others 404 RepoNotFound."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if "/gated-" in self.path:
            code = 403 if self.headers.get("authorization") else 401
            self.send_response(code)
            self.send_header("X-Error-Code", "GatedRepo")
            self.send_header("X-Error-Message", "Access to model is restricted")
        else:
            self.send_response(404)
            self.send_header("X-Error-Code", "RepoNotFound")
            self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def hub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def check(model: str, env: dict[str, str], tmp_path: Path) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    base |= {"HF_HOME": str(tmp_path / "hf"), "VLMLAB_HOME": str(tmp_path / "vlmlab")} | env
    proc = subprocess.run([sys.executable, "-m", "vlmlab", "models", "check", model], capture_output=True, text=True,
                          env=base, timeout=300, cwd=tmp_path)
    return proc.returncode, proc.stderr.strip()


@pytest.mark.slow  # each case is a CLI subprocess (~20 s under load)
@pytest.mark.parametrize("token,why", [(None, "no Hugging Face token is set"), ("hf_fake", "has not been granted access")])
def test_gated_model(hub_url: str, tmp_path: Path, token: str | None, why: str) -> None:
    env = {"HF_ENDPOINT": hub_url, "HF_HUB_OFFLINE": "0"} | ({"HF_TOKEN": token} if token else {})
    code, err = check("acme/gated-vlm", env, tmp_path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("error: acme/gated-vlm: the model is gated (HTTP 40") and why in err
    assert ("hf auth login" in err) if token is None else ("accept its licence" in err)
    assert not list(tmp_path.glob("vlmlab/*"))  # nothing partial


@pytest.mark.slow
def test_missing_model(hub_url: str, tmp_path: Path) -> None:
    code, err = check("acme/no-such-vlm", {"HF_ENDPOINT": hub_url, "HF_HUB_OFFLINE": "0"}, tmp_path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "acme/no-such-vlm: no such model on the hub (HTTP 404)" in err and "check the id" in err


@pytest.mark.slow
def test_offline_and_not_cached(tmp_path: Path) -> None:
    code, err = check("acme/some-vlm", {"HF_HUB_OFFLINE": "1"}, tmp_path)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "acme/some-vlm: not in the local Hugging Face cache" in err and "hf download acme/some-vlm" in err
