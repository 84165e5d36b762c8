"""The caption study: which VLM, fine-tuned with LoRA, captions these images best?

Entry points: `run_study(config)` (data preparation, per-model fine-tune / generate / score, the
human row, the comparison report) and `build_report(study_dir)`. Panorama input strategies live in
`images.py` / `panorama.py`. See `vlmlab caption --help`.
"""

from vlmlab.caption.config import CaptionConfig, ModelEntry, select_models
from vlmlab.caption.report import build_report
from vlmlab.caption.study import StudyOutcome, run_study

__all__ = ["CaptionConfig", "ModelEntry", "StudyOutcome", "build_report", "run_study", "select_models"]
