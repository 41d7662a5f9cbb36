"""Test-only launcher: runs a stage script (as `python script args...` would) after wrapping the
trainer's training data collator, so that each process appends to $SHARD_PROBE_DIR/rank-<RANK>.txt
the id of every training example it consumes ("Question <id>:" is in every synthetic prompt).
The script itself is unchanged; this only watches what the data loader hands each process.

    accelerate launch --multi_gpu --num_processes 2 tests/training/shard_probe.py rlhf/training/reward.py --config ...
"""
import os
import re
import runpy
import sys
from pathlib import Path

from transformers import Trainer

_original = Trainer.get_train_dataloader
_QUESTION = re.compile(r"Question (\d+):")


def _recording_train_dataloader(self):
    collator = self.data_collator
    out = Path(os.environ["SHARD_PROBE_DIR"]) / f"rank-{os.environ.get('RANK', '0')}.txt"
    tokenizer = self.processing_class

    def record(examples):
        with out.open("a") as file:
            for example in examples:
                text = tokenizer.decode(example["prompt_ids"] if "prompt_ids" in example else example["chosen_ids"])
                file.write(_QUESTION.search(text).group(1) + "\n")
        return collator(examples)

    self.data_collator = record
    try:
        return _original(self)
    finally:
        self.data_collator = collator


Trainer.get_train_dataloader = _recording_train_dataloader
script = sys.argv[1]
sys.argv = sys.argv[1:]
runpy.run_path(script, run_name="__main__")
