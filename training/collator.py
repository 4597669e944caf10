"""Batches FaceInsight conversations for training: chat template, placeholder expansion, padding, labels that
train only on the assistant's answer (prompt, image/parsing placeholders and padding are -100), facet labels and
optional parsing maps."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

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
        prompts, full_texts, images, maps = [], [], [], []
        for index, example in enumerate(examples):
            messages = example["messages"]
            if not messages or messages[-1]["role"] != "assistant":
                raise ValueError(f"example {index}: the conversation must end with the assistant's answer")
            prompt = processor.apply_chat_template(messages[:-1], add_generation_prompt=True)
            full = processor.apply_chat_template(messages)
            if not full.startswith(prompt):
                raise ValueError(f"example {index}: the chat template does not extend the prompt with the answer")
            prompts.append(prompt)
            full_texts.append(full)
            example_images = example.get("images") or []
            images.extend(example_images)
            parsing_map = example.get("parsing_map")
            maps.extend([parsing_map] + [None] * (len(example_images) - 1) if example_images else [])
        kwargs = {"padding": True, "padding_side": "right", "return_tensors": "pt"}
        if self.max_length:
            kwargs.update(truncation=True, max_length=self.max_length)
        used_maps = parsing_maps_from(self.parsing_map_source, images, maps) if images else None
        batch = processor(images=images or None, text=full_texts, parsing_maps=used_maps, **kwargs)
        # prompt lengths need only the tokenizer: the images were processed once, above
        expanded_prompts = processor.expand_placeholders(prompts)
        prompt_lengths = [
            len(ids) for ids in processor.tokenizer(expanded_prompts, return_token_type_ids=False)["input_ids"]
        ]
        labels = batch["input_ids"].clone()
        for row, length in enumerate(prompt_lengths):
            labels[row, :length] = -100
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
