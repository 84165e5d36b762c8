"""An ICL stage whose model is behind a server checks the server before writing anything."""

from __future__ import annotations

import pytest
import yaml

from vlmlab.cli import main
from vlmlab.testing import serve


def test_eval_with_a_model_name_typo_stops_before_writing(tmp_path, capsys):
    with serve(lambda conversation, params: "yes", api="openai", model="qwen2-vl") as server:
        config = tmp_path / "eval.yaml"
        config.write_text(yaml.safe_dump({
            "index": str(tmp_path / "index"),
            "test": {"questions": "q.json", "annotations": "a.json", "images": "."},
            "model": {"ref": "qwen2vl", "kind": "openai", "base_url": server.url},
            "methods": ["zero-shot"], "shots": [1], "sizes": ["full"],
        }))
        with pytest.raises(SystemExit) as info:
            main(["icl", "eval", str(config), "--out", str(tmp_path / "out")])
        assert server.chat_requests == 0
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "does not serve model 'qwen2vl' (it lists: qwen2-vl)" in err[0]
    assert not (tmp_path / "out").exists()
