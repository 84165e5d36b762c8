"""The one model block: options bound against the backend's parameters when the block is
validated (a typo is one line, exit 2, before anything loads)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vlmlab.config import validate_config
from vlmlab.errors import ConfigError
from vlmlab.models.spec import ModelBlock, backend_parameters


def test_block_options_are_backend_parameters() -> None:
    block = validate_config({"ref": "tiny-llava", "quantization": "int8", "options": {"vision_cache": False}}, ModelBlock)
    assert block.backend_options() == {"dtype": "auto", "batch_size": 8, "quantization": "int8", "vision_cache": False}
    http = validate_config({"kind": "openai", "ref": "Qwen/Qwen2-VL-2B-Instruct", "base_url": "http://127.0.0.1:1/v1",
                            "options": {"max_concurrency": 4}}, ModelBlock)
    assert http.backend_options() == {"model": "Qwen/Qwen2-VL-2B-Instruct", "max_concurrency": 4}
    assert "vision_cache" in backend_parameters("hf") and "max_concurrency" in backend_parameters("openai")


@pytest.mark.parametrize("raw,message", [
    ({"ref": "x", "options": {"vision_cach": False}}, "unknown option 'vision_cach' for the hf backend; did you mean 'vision_cache'?"),
    ({"ref": "x", "options": {"batch_size": 2}}, "belongs in the model block itself"),
    ({"kind": "openai", "ref": "m"}, "kind openai needs base_url"),
    ({"kind": "ollama", "ref": "m", "base_url": "http://h", "quantization": "int4"}, "apply to kind hf only"),
    ({"kind": "openai", "ref": "m", "base_url": "http://h", "options": {"max_concurency": 2}}, "did you mean 'max_concurrency'"),
])
def test_bad_blocks_are_one_line(raw: dict, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        validate_config(raw, ModelBlock, "study.yaml")
    assert message in str(exc.value) and "\n" not in str(exc.value)


def test_cli_option_typo_exits_2_before_loading(capsys, tmp_path: Path) -> None:
    from vlmlab.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["models", "check", str(tmp_path / "never-loaded"), "--option", "vision_cach=false"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "did you mean 'vision_cache'" in err
