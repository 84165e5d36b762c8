"""Metrics: COCO caption metrics (`caption`), VQA accuracy (`vqa`), agreement statistics with
bootstrap CIs (`agreement`), representation similarity (`representation`), intervals that carry
their method and resampling unit (`inference`) and paired tests of accuracy differences (`paired`).

Import the submodule you need (`from vlmlab.metrics.caption import score_captions`); this package
imports nothing so that `import vlmlab.metrics` stays cheap.
"""
