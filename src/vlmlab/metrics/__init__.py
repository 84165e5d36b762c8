"""Metrics: COCO caption metrics (`caption`), VQA accuracy (`vqa`), agreement statistics with
bootstrap CIs (`agreement`) and representation similarity (`representation`).

Import the submodule you need (`from vlmlab.metrics.caption import score_captions`); this package
imports nothing so that `import vlmlab.metrics` stays cheap.
"""
