"""Run one ICL stage in a subprocess with the toy backend (for SIGKILL-resume and torchrun tests).

    python tests/icl/stage_main.py JOBS_JSON SUPPORT_JSON TEST_JSON [DELAY]

JOBS_JSON is a list of {"stage", "config" (the stage config as a JSON object), "out"}, run in
order; SUPPORT_JSON / TEST_JSON hold the toy data paths.
DELAY seconds are slept before each ledger append and each embedding batch, so that a test can kill
the process part-way through.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from icl_toy import toy_backend_for  # noqa: E402


def main() -> None:
    jobs_json, support_json, test_json = sys.argv[1:4]
    delay = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    from vlmlab.embed.pixels import BagOfWordsEmbedder, PixelsEmbedder
    from vlmlab.icl import configs
    from vlmlab.icl.eval_stage import run_eval
    from vlmlab.icl.stages import run_beam, run_candidates, run_index, run_rl_data
    from vlmlab.runs import Run

    if delay:
        original_append = Run.append

        def slow_append(self, item_id, record):
            time.sleep(delay)
            return original_append(self, item_id, record)

        Run.append = slow_append
        for cls in (PixelsEmbedder, BagOfWordsEmbedder):
            original_embed = cls.embed

            def slow_embed(self, items, _orig=original_embed):
                time.sleep(delay)
                return _orig(self, items)

            cls.embed = slow_embed
    paths = {k: Path(v) if k != "image_pattern" else v for k, v in json.loads(Path(support_json).read_text()).items()}
    test_paths = {k: Path(v) if k != "image_pattern" else v for k, v in json.loads(Path(test_json).read_text()).items()}
    backend = toy_backend_for(paths)
    backend.oracle.update(toy_backend_for(test_paths).oracle)
    runners = {
        "index": lambda raw, out: run_index(configs.IndexConfig.model_validate(raw), out),
        "candidates": lambda raw, out: run_candidates(configs.CandidatesConfig.model_validate(raw), out),
        "beam": lambda raw, out: run_beam(configs.BeamConfig.model_validate(raw), out, backend=backend),
        "rl-data": lambda raw, out: run_rl_data(configs.RLDataConfig.model_validate(raw), out, backend=backend),
        "eval": lambda raw, out: run_eval(configs.EvalConfig.model_validate(raw), out, backend=backend),
    }
    for job in json.loads(Path(jobs_json).read_text()):
        runners[job["stage"]](job["config"], job["out"])
    from accelerate import PartialState

    state = PartialState()
    print(f"done rank={state.process_index} world={state.num_processes}", flush=True)


if __name__ == "__main__":
    main()
