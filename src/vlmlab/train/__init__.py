"""Supervised fine-tuning (LoRA or full) with label masking from the inference encoder,
a length guard that never truncates image tokens, and resumable checkpoints."""

from vlmlab.train.args import FineTuneArgs
from vlmlab.train.examples import EncodedExample, TrainExample, encode_and_guard, encode_example
from vlmlab.train.fine_tune import StepLog, TrainResult, fine_tune

__all__ = ["EncodedExample", "FineTuneArgs", "StepLog", "TrainExample", "TrainResult", "encode_and_guard", "encode_example",
           "fine_tune"]
