"""`FaceInsightSFTTrainer`: TRL's SFTTrainer that keeps FaceInsight's own loss (LM + BCE + logic) and logs each part.

TRL >= 1.15 computes its own LM loss and ignores the loss a model returns, which would silently drop the BCE and
logic terms; here `compute_loss` is transformers.Trainer's, which uses the model's loss. The model is told it does
not take `num_items_in_batch`, so the Trainer divides the whole loss (all three parts) by the gradient-accumulation
steps; the LM part is then a per-micro-batch token mean (the classic Trainer behaviour).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from transformers import Trainer
from trl import SFTTrainer

LOSS_PARTS = ("lm_loss", "bce_loss", "logic_loss")


class FaceInsightSFTTrainer(SFTTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False
        self._loss_part_sums = defaultdict(float)
        self._loss_part_counts = defaultdict(int)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = {**inputs, "use_cache": False}
        loss, outputs = Trainer.compute_loss(self, model, inputs, return_outputs=True)
        for part in LOSS_PARTS:
            value = getattr(outputs, part, None) if not isinstance(outputs, dict) else outputs.get(part)
            if value is not None:
                self._loss_part_sums[part] += float(value.detach())
                self._loss_part_counts[part] += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, start_time=None):
        for part in LOSS_PARTS:
            if self._loss_part_counts[part]:
                prefix = "" if "loss" in logs else "eval_"
                logs[f"{prefix}{part}"] = round(self._loss_part_sums[part] / self._loss_part_counts[part], 4)
        self._loss_part_sums.clear()
        self._loss_part_counts.clear()
        super().log(logs, start_time)

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        with torch.no_grad():
            loss = self.compute_loss(model, dict(inputs))
        return loss.detach(), None, None
