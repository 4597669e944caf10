"""`FaceInsightSFTTrainer`: TRL's SFTTrainer that keeps FaceInsight's own loss (LM + BCE + logic) and logs each part.

TRL >= 1.15 computes its own LM loss and ignores the loss a model returns, which would silently drop the BCE and
logic terms; here `compute_loss` builds the model's weighted total itself, scaled so that gradient accumulation and
data-parallel processes train on exactly what one process with the same global batch would:

* LM loss: summed over answer tokens and divided by the token count of the whole global batch (the Trainer's
  `num_items_in_batch`, gathered across processes), times the number of processes (DDP averages gradients);
* BCE and logic losses: means over each micro-batch, divided by the accumulation steps (DDP's average over
  processes of equal-sized micro-batches is the global mean).
"""

from __future__ import annotations

from collections import defaultdict

import torch
from trl import SFTTrainer

LOSS_PARTS = ("lm_loss", "bce_loss", "logic_loss")


class FaceInsightSFTTrainer(SFTTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = True  # FaceInsight's forward takes num_items_in_batch for its LM loss
        self._loss_part_sums = defaultdict(float)
        self._loss_part_counts = defaultdict(int)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = {**inputs, "use_cache": False}
        if num_items_in_batch is not None:
            inputs["num_items_in_batch"] = num_items_in_batch
        outputs = model(**inputs)
        if num_items_in_batch is None:  # evaluation, or no labels: the Trainer averages plain per-batch losses
            loss = outputs.loss
            lm_scale = 1.0
        else:
            config = self.accelerator.unwrap_model(model).config
            processes = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
            accumulation = getattr(self, "current_gradient_accumulation_steps", 1) or 1
            lm_scale = processes * accumulation  # turns the global-token share back into a mean, for the logs
            terms = []
            if outputs.lm_loss is not None:
                terms.append(config.lm_loss_weight * outputs.lm_loss * processes)
            for weight, part in (
                (config.bce_loss_weight, outputs.bce_loss),
                (config.logic_loss_weight, outputs.logic_loss),
            ):
                if part is not None:
                    terms.append(weight * part / accumulation)
            loss = torch.stack(terms).sum()
        for part in LOSS_PARTS:
            value = getattr(outputs, part, None)
            if value is not None:
                self._loss_part_sums[part] += float(value.detach()) * (lm_scale if part == "lm_loss" else 1.0)
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
