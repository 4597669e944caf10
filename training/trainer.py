"""Training FaceInsight with TRL, as TRL's own `sft_trainer.py` lays it out: the collator, then the trainer.

`FaceInsightCollator` batches FaceInsight conversations: chat template, placeholder expansion, padding, labels that
train only on the assistant's answers (every assistant turn; prompts, image/parsing placeholders and padding are
-100), facet labels and optional parsing maps.

`FaceInsightSFTTrainer`: TRL's SFTTrainer that trains FaceInsight's own loss (LM + BCE + logic) and logs each part.

TRL >= 1.15 computes its own LM loss through a fused head and ignores the loss a model returns, which would silently
drop the BCE and logic terms. Here `compute_loss` is transformers' `Trainer.compute_loss`: the model's own total,
whose weights live in the model (`FaceInsightForConditionalGeneration._losses`) and nowhere else.

What this trainer adds is one count. Gradient accumulation and data-parallel processes must train exactly what one
process with the same global batch would, so every loss term is a sum divided by a count of the whole global batch:
the Trainer's `num_items_in_batch` (answer tokens, for the LM loss) and, beside it, `num_images_in_batch` (faces, for
the per-face BCE and logic terms), counted over the same accumulated micro-batches and gathered across processes
the same way. The Trainer then leaves accumulation to the loss and multiplies by the process count, as DDP averages.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import torch
from transformers import Trainer
from trl import SFTTrainer

PARSING_MAP_SOURCES = ("dataset", "parser", "blank")


def parsing_maps_from(source: str, images: list, dataset_maps: list) -> list | None:
    """The maps handed to the model for `images`, by parsing map source (see the glossary in schema_faceinsight).

    dataset: the dataset's maps (where a record has none, the in-model parser fills in); parser: none, so the
    in-model parser makes every map; blank: all-background maps, the no-parsing ablation (same tokens, no content).
    """
    if source not in PARSING_MAP_SOURCES:
        raise ValueError(f"the parsing map source must be one of {PARSING_MAP_SOURCES}, got {source!r}")
    if source == "parser":
        return None
    if source == "blank":
        return [np.zeros(np.asarray(image).shape[:2], dtype=np.uint8) for image in images]
    return list(dataset_maps) if any(m is not None for m in dataset_maps) else None


@dataclass
class FaceInsightCollator:
    processor: object
    parsing_map_source: str = "dataset"
    max_length: int | None = None

    def __call__(self, examples: list[dict]) -> dict:
        processor = self.processor
        full_texts, answer_bounds, images, maps = [], [], [], []
        for index, example in enumerate(examples):
            messages = example["messages"]
            if not messages or messages[-1]["role"] != "assistant":
                raise ValueError(f"example {index}: the conversation must end with the assistant's answer")
            answer_bounds.append(self._answer_bounds(messages, index))
            full_texts.append(answer_bounds[-1][-1][1])  # the text through the last answer: the whole conversation
            example_images = example.get("images") or []
            images.extend(example_images)
            parsing_map = example.get("parsing_map")
            maps.extend([parsing_map] + [None] * (len(example_images) - 1) if example_images else [])
        kwargs = {"padding": True, "padding_side": "right", "return_tensors": "pt"}
        if self.max_length:
            kwargs.update(truncation=True, max_length=self.max_length)
        used_maps = parsing_maps_from(self.parsing_map_source, images, maps) if images else None
        batch = processor(images=images or None, text=full_texts, parsing_maps=used_maps, **kwargs)
        # token positions of the answers need only the tokenizer: the images were processed once, above
        bounds = [text for pairs in answer_bounds for pair in pairs for text in pair]
        expanded = [text.replace(processor.image_token, processor.replace_image_token()) for text in bounds]
        lengths = iter(len(ids) for ids in processor.tokenizer(expanded, return_token_type_ids=False)["input_ids"])
        labels = torch.full_like(batch["input_ids"], -100)
        for row, pairs in enumerate(answer_bounds):
            for _ in pairs:
                start, end = next(lengths), next(lengths)
                labels[row, start:end] = batch["input_ids"][row, start:end]
        labels[batch["attention_mask"] == 0] = -100
        labels[(labels == processor.image_token_id) | (labels == processor.parsing_token_id)] = -100
        batch["labels"] = labels
        if all("face_labels" in example for example in examples):
            rows = [example["face_labels"] for example in examples]
            lengths = {len(row) for row in rows}
            if len(lengths) != 1:
                raise ValueError(f"face_labels rows have different lengths {sorted(lengths)} in one batch")
            batch["face_labels"] = torch.tensor(rows, dtype=torch.float32)
        return dict(batch)

    def _answer_bounds(self, messages: list[dict], index: int) -> list[tuple[str, str]]:
        """For each assistant turn, (the text before its answer, the text through its answer's end of turn)."""
        bounds = []
        for turn, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            before = self.processor.apply_chat_template(messages[:turn], add_generation_prompt=True)
            through = self.processor.apply_chat_template(messages[: turn + 1])
            if not through.startswith(before):
                raise ValueError(f"example {index}: the chat template does not extend the prompt with the answer")
            bounds.append((before, through))
        return bounds


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
