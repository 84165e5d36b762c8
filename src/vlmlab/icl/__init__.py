"""The ICL study: which in-context demonstrations to show a VLM (Lever-LM / Lever-Plus, done right).

Stages, each a resumable run folder (functions here, commands under `vlmlab icl`):
`index` (`stages.run_index`) -> `candidates` (`stages.run_candidates`) -> `beam`
(`stages.run_beam`, InfoScore beam search in `beam.py`) -> `rl-data` (`stages.run_rl_data`) ->
selector training (`selectors/`) -> `eval` (`eval_stage.run_eval`) -> `compare`
(`compare.compare_runs`).
"""
