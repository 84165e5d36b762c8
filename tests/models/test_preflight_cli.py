"""Model-access failures stop a study before it writes anything: `vlmlab rating run`, `caption run`
and `icl eval` with a gated or missing hub id (a fake hub on 127.0.0.1) or an int4 request the model
cannot take exit 2 with one line, and the output folder is never created (before
`models.preflight`, rating left its condition folders marked `failed`). A checkpoint whose family
facts cannot be derived: test_foreign_checkpoint.py. Also `models check --kind openai`.

The hub is reached in this process: `huggingface_hub.constants` is pointed at the fake hub and put
online for the test (the suite runs with HF_HUB_OFFLINE=1); nothing reaches the network.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from test_hub_errors import FakeHub
from vlmlab.cli import main


@pytest.fixture(scope="module")
def hub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def online_hub(hub_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", hub_url)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # no stored token either
    return hub_url


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(args)
    return int(exc.value.code), capsys.readouterr().err.strip().splitlines()


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("faces") / "faces"
    with pytest.raises(SystemExit) as exc:
        main(["toyworld", "generate", "faces", "--out", str(out), "--n", "6"])
    assert exc.value.code in (0, None)
    return out


def rating_config(tmp_path: Path, faces: Path, model: dict) -> Path:
    config = tmp_path / "rating.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "out": str(tmp_path / "out"), "data": {"ratings": str(faces / "ratings.csv"), "images": str(faces)},
        "models": [{"name": "m", "kind": "hf", **model}], "emotions": ["happy", "sad", "angry", "fearful", "surprised", "neutral"],
        "conditions": {"modes": ["context-carry", "single-shot"], "temperatures": [0.0], "repeats": 1},
        "capture": {"top_logprobs": 0, "max_new_tokens": 4}, "batch_size": 4,
    }))
    return config


@pytest.mark.parametrize("repo,why", [("acme/gated-vlm", "the model is gated (HTTP 401) and no Hugging Face token is set"),
                                      ("acme/no-such-vlm", "no such model on the hub (HTTP 404)")])
def test_rating_hub_failure_writes_nothing(repo: str, why: str, online_hub: str, faces: Path, tmp_path: Path, capsys) -> None:
    code, err = run_cli(["rating", "run", str(rating_config(tmp_path, faces, {"ref": repo}))], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {repo}: {why}"), err
    assert not (tmp_path / "out").exists()  # no condition folder, not even one marked failed


def test_rating_int4_refusal_writes_nothing(tiny_model, faces: Path, tmp_path: Path, capsys) -> None:
    odd = tiny_model("llava", hidden_size=48, intermediate_size=96)  # 48 input features: not a multiple of 32
    model = {"ref": str(odd), "variants": [{"name": "q4", "quantization": "int4"}]}
    code, err = run_cli(["rating", "run", str(rating_config(tmp_path, faces, model))], capsys)
    assert code == 2 and len(err) == 1, err
    assert "quantization=int4" in err[0] and "groups of 32" in err[0] and "use int8" in err[0]
    assert not (tmp_path / "out").exists()


def test_caption_gated_model_writes_nothing(online_hub: str, tmp_path: Path, capsys) -> None:
    data = tmp_path / "panorama"
    with pytest.raises(SystemExit):
        main(["toyworld", "generate", "panorama", "--out", str(data), "--n", "20"])
    config = tmp_path / "caption.yaml"
    config.write_text(yaml.safe_dump({
        "name": "t", "out_dir": str(tmp_path / "runs"),
        "data": {"train": str(data / "train.tsv"), "test": str(data / "test.tsv")},
        "models": [{"name": "gated", "ref": "acme/gated-vlm", "finetune": False}],
        "image": {"policy": "squash", "size": 56}, "generation": {"max_new_tokens": 4},
    }))
    code, err = run_cli(["caption", "run", str(config)], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: acme/gated-vlm: the model is gated (HTTP 401)"), err
    assert not (tmp_path / "runs").exists()  # not even the shared data


def test_icl_eval_gated_model_writes_nothing(online_hub: str, tmp_path: Path, capsys) -> None:
    data = tmp_path / "vqa"
    with pytest.raises(SystemExit):
        main(["toyworld", "generate", "vqa", "--out", str(data), "--n", "40"])
    split = {"questions": str(data / "train_questions.json"), "annotations": str(data / "train_annotations.json"), "images": str(data)}
    (tmp_path / "index.yaml").write_text(yaml.safe_dump({"support": split, "text_embedder": "bag-of-words", "image_embedder": "pixels"}))
    with pytest.raises(SystemExit) as exc:
        main(["icl", "index", str(tmp_path / "index.yaml"), "--out", str(tmp_path / "index")])
    assert exc.value.code in (0, None)
    test = {"questions": str(data / "test_questions.json"), "annotations": str(data / "test_annotations.json"), "images": str(data)}
    (tmp_path / "eval.yaml").write_text(yaml.safe_dump({
        "index": str(tmp_path / "index"), "test": test, "model": {"kind": "hf", "ref": "acme/gated-vlm"},
        "methods": ["zero-shot"], "shots": [1], "sizes": [4],
    }))
    code, err = run_cli(["icl", "eval", str(tmp_path / "eval.yaml"), "--out", str(tmp_path / "eval")], capsys)
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("error: acme/gated-vlm: the model is gated (HTTP 401)"), err
    assert not (tmp_path / "eval").exists()


def test_models_check_openai_against_a_fake_server(capsys) -> None:
    """`models check --kind openai --model NAME URL` takes the same model block as the studies: one
    generate with an image through the OpenAI wire format; score is reported as unsupported."""
    from typer.testing import CliRunner

    from vlmlab.cli import app
    from vlmlab.testing import serve

    seen = []

    def rater(conversation, params):
        seen.append((conversation, params))
        return "red"

    with serve(rater, api="openai", model="served-vlm") as server:
        checked = CliRunner().invoke(app, ["models", "check", "--kind", "openai", "--model", "served-vlm", server.url],
                                     env={"COLUMNS": "200"})
    assert checked.exit_code == 0, checked.output
    assert "'red'" in checked.output and "unsupported by this backend" in checked.output
    [(conversation, params)] = seen
    assert params["model"] == "served-vlm" and params["max_new_tokens"] == 16
    assert len(conversation[-1].images) == 1 and "What colour is the square?" in conversation[-1].text
    code, err = run_cli(["models", "check", "--kind", "openai", server.url], capsys)
    assert code == 2 and err == ["error: models check --kind openai: pass --model NAME (the server-side model name)"]
