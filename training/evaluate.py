"""Attribute accuracy of FaceInsight's structured (logic-consistent) predictions on labelled records, and the
majority-class baseline from training labels."""

from __future__ import annotations

import json

import numpy as np
import torch

from faceinsight.training.instructions import encode_labels


def majority_predictions(train_targets: list[list[int]], config) -> np.ndarray:
    """Per binary attribute: 1 where positives outnumber negatives among known training labels; per categorical
    facet: its most frequent value."""
    targets = np.asarray(train_targets, dtype=np.float32)
    known = targets != -100
    positive = ((targets == 1) & known).sum(0)
    majority = (positive > (known.sum(0) - positive)).astype(np.int64)
    for indices in config.facet_label_indices.values():
        majority[indices] = 0
        majority[indices[int(np.argmax(positive[indices]))]] = 1
    return majority


def facet_accuracies(decisions: np.ndarray, targets: np.ndarray, config) -> dict[str, float]:
    """Accuracy per binary attribute (known labels) and per categorical facet (the chosen value is right)."""
    results = {}
    for column, name in enumerate(config.binary_attributes):
        known = targets[:, column] != -100
        if known.any():
            results[name] = float((decisions[known, column] == targets[known, column]).mean())
    for facet, indices in config.facet_label_indices.items():
        known = (targets[:, indices] != -100).all(1)
        if known.any():
            chosen = decisions[known][:, indices].argmax(1)
            results[facet] = float((chosen == targets[known][:, indices].argmax(1)).mean())
    return results


@torch.no_grad()
def evaluate_attributes(model, processor, records, train_targets, batch_size: int = 32,
                        use_parsing_maps: bool = True) -> dict:  # fmt: skip
    config = model.config
    decisions, probability_batches, targets = [], [], []
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        maps = batch["parsing_map"] if use_parsing_maps and all(m is not None for m in batch["parsing_map"]) else None
        inputs = processor.image_processor(batch["image"], parsing_maps=maps, return_tensors="pt")
        predictions = model.predict_attributes(inputs["pixel_values"], inputs.get("parsing_maps"))
        decisions.append(predictions.decisions.long().cpu().numpy())
        probability_batches.append(predictions.probabilities.float().cpu().numpy())
        targets.extend(encode_labels(json.loads(labels), config) for labels in batch["labels"])
    decisions, probabilities = np.concatenate(decisions), np.concatenate(probability_batches)
    targets = np.asarray(targets)
    raw = (probabilities >= 0.5).astype(np.int64)  # without the LCM: threshold per attribute, argmax per facet
    for indices in config.facet_label_indices.values():
        raw[:, indices] = 0
        raw[np.arange(len(raw)), np.asarray(indices)[probabilities[:, indices].argmax(1)]] = 1
    model_accuracy = facet_accuracies(decisions, targets, config)
    raw_accuracy = facet_accuracies(raw, targets, config)
    majority = np.broadcast_to(majority_predictions(train_targets, config), targets.shape)
    baseline = facet_accuracies(majority, targets, config)
    binary = [n for n in model_accuracy if n in config.binary_attributes]
    return {
        "per_label_accuracy": model_accuracy,
        "majority_per_label_accuracy": baseline,
        "mean_attribute_accuracy": float(np.mean([model_accuracy[n] for n in binary])) if binary else None,
        "without_logic_per_label_accuracy": raw_accuracy,
        "without_logic_mean_attribute_accuracy": float(np.mean([raw_accuracy[n] for n in binary])) if binary else None,
        "majority_mean_attribute_accuracy": float(np.mean([baseline[n] for n in binary])) if binary else None,
        "samples": int(len(targets)),
    }
