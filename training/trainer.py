"""`FaceInsightSFTTrainer`: TRL's SFTTrainer that trains FaceInsight's own loss (LM + BCE + logic) and logs each part.

TRL >= 1.15 computes its own LM loss through a fused head and ignores the loss a model returns, which would silently
drop the BCE and logic terms. Here `compute_loss` is transformers' `Trainer.compute_loss`: the model's own total,
whose weights live in the model (`FaceInsightForConditionalGeneration._total_loss`) and nowhere else.

What this trainer adds is one count. Gradient accumulation and data-parallel processes must train exactly what one
process with the same global batch would, so every loss term is a sum divided by a count of the whole global batch:
the Trainer's `num_items_in_batch` (answer tokens, for the LM loss) and, beside it, `num_images_in_batch` (faces, for
the per-face BCE and logic terms), counted over the same accumulated micro-batches and gathered across processes
the same way. The Trainer then leaves accumulation to the loss and multiplies by the process count, as DDP averages.
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
        self.model_accepts_loss_kwargs = True  # FaceInsight's forward takes num_items_in_batch for its LM loss
        self._num_images_in_batch = None
        self._loss_part_sums = defaultdict(float)
        self._loss_part_counts = defaultdict(int)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        images = sum(len(batch["pixel_values"]) for batch in batch_samples if batch.get("pixel_values") is not None)
        images = torch.tensor(images, device=device)
        if self.args.average_tokens_across_devices and self.args.world_size > 1:  # as num_items_in_batch is
            images = self.accelerator.gather(images).sum()
        self._num_images_in_batch = images
        return batch_samples, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        inputs = {**inputs, "use_cache": False}
        if num_items_in_batch is not None:
            inputs["num_images_in_batch"] = self._num_images_in_batch
        loss, outputs = Trainer.compute_loss(
            self, model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
        )
        # parts divided by global counts are shares of the batch; times processes x accumulation they read as means
        scale = 1.0
        if num_items_in_batch is not None:
            processes = self.accelerator.num_processes if self.args.average_tokens_across_devices else 1
            scale = processes * (getattr(self, "current_gradient_accumulation_steps", 1) or 1)
        for part in LOSS_PARTS:
            value = getattr(outputs, part, None)
            if value is not None:
                self._loss_part_sums[part] += float(value.detach()) * scale
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
