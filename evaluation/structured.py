"""Scoring predictions on the paper's three tasks, and FaceInsight's structured (logic-consistent) predictions.

A prediction matrix has one row per face and one column per label node of a schema (`config.label_names`): 1, 0, or
-1 where the model gave no usable answer (counted as wrong). Targets use -100 for labels a dataset does not have.
The same scorer serves structured predictions, thresholded predictions without the logic module, parsed generated
answers and the majority-class baseline, so their numbers are comparable.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from faceinsight.evaluation.stats import (
    bootstrap_mean_accuracy,
    bootstrap_paired_difference,
    mean_accuracy,
    wilson_interval,
)
from faceinsight.training.instructions import encode_labels
from faceinsight.training.trainer import parsing_maps_from

UNANSWERED = -1


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


def rule_pairs(rules: list[dict], config) -> dict[str, list[tuple[int, int]]]:
    index = {name: i for i, name in enumerate(config.label_names)}
    return {
        kind: [
            (index[r["a"]], index[r["b"]]) for r in rules if r["type"] == kind and r["a"] in index and r["b"] in index
        ]
        for kind in ("exclusion", "implication")
    }


def violation_rate(predictions: np.ndarray, rules: list[dict], config) -> float:
    """Share of faces whose predictions break at least one rule (exclusion both on, implication a without b) or give a
    categorical facet other than exactly one value; unanswered labels break nothing."""
    pairs = rule_pairs(rules, config)
    broken = np.zeros(len(predictions), dtype=bool)
    for a, b in pairs["exclusion"]:
        broken |= (predictions[:, a] == 1) & (predictions[:, b] == 1)
    for a, b in pairs["implication"]:
        broken |= (predictions[:, a] == 1) & (predictions[:, b] == 0)
    for indices in config.facet_label_indices.values():
        values = predictions[:, indices]
        answered = (values != UNANSWERED).all(1)
        broken |= answered & ((values == 1).sum(1) != 1)
    return float(broken.mean()) if len(broken) else float("nan")


def rules_seen_together(rules: list[dict], train_targets, config) -> list[dict]:
    """The rules whose two label nodes some training face carries together: the only ones that training labels can
    teach (in a mixture of datasets that each label one task, "Happiness implies Smiling" is never seen)."""
    known = np.asarray(train_targets) != -100
    index = {name: i for i, name in enumerate(config.label_names)}
    return [rule for rule in rules if (known[:, index[rule["a"]]] & known[:, index[rule["b"]]]).any()]


def score_predictions(predictions: np.ndarray, targets: np.ndarray, config, rules: list[dict]) -> dict:
    """Accuracy per task as the paper reports it, with 95% intervals: attributes (mean over attributes, and each),
    each categorical facet (accuracy, confusion matrix), plus the logic-violation rate and the unanswered share."""
    predictions, targets = np.asarray(predictions), np.asarray(targets)
    report = {"faces": int(len(targets)), "tasks": {}}
    binary = list(config.binary_attributes)
    known = targets[:, : len(binary)] != -100
    attribute_columns = [i for i in range(len(binary)) if known[:, i].any()]
    if attribute_columns:
        correct = predictions[:, attribute_columns] == targets[:, attribute_columns]
        mean, interval = bootstrap_mean_accuracy(correct, known[:, attribute_columns])
        per_attribute = {binary[i]: float(correct[known[:, i], k].mean()) for k, i in enumerate(attribute_columns)}
        answered = predictions[:, attribute_columns][known[:, attribute_columns]] != UNANSWERED
        report["tasks"]["attributes"] = {
            "mean_accuracy": mean,
            "ci95": list(interval),
            "per_attribute": per_attribute,
            "unanswered": float(1 - answered.mean()),
        }
    for facet, indices in config.facet_label_indices.items():
        facet_known = (targets[:, indices] != -100).all(1)
        if not facet_known.any():
            continue
        truth = targets[facet_known][:, indices].argmax(1)
        chosen_rows = predictions[facet_known][:, indices]
        answered = ((chosen_rows == 1).sum(1) == 1) & (chosen_rows != UNANSWERED).all(1)
        chosen = np.where(answered, chosen_rows.argmax(1), -1)
        hits = int((chosen == truth).sum())
        values = list(config.categorical_facets[facet])
        confusion = np.zeros((len(values), len(values) + 1), dtype=np.int64)  # last column: no single value given
        for t, c in zip(truth, chosen):
            confusion[t, c if c >= 0 else len(values)] += 1
        report["tasks"][facet] = {
            "accuracy": hits / len(truth),
            "ci95": list(wilson_interval(hits, len(truth))),
            "n": int(len(truth)),
            "labels": values,
            "confusion_matrix": confusion.tolist(),
            "unanswered": float(1 - answered.mean()),
        }
    report["logic_violation_rate"] = violation_rate(predictions, rules, config)
    return report


def _facet_choice(rows: np.ndarray) -> np.ndarray:
    """Per face, the index of the one value given, or -1 where no single value was given."""
    single = ((rows == 1).sum(1) == 1) & (rows != UNANSWERED).all(1)
    return np.where(single, rows.argmax(1), -1)


def paired_comparison(generated: np.ndarray, structured: np.ndarray, targets: np.ndarray, asked: np.ndarray, config):
    """Generated answers against the structured decisions of the same model on the same questions, per task: both
    accuracies, their difference (generated less structured) with a face-level paired 95% interval, and the share of
    questions the two answer alike ("agreement": how much of what the head decides the answers carry)."""
    generated, structured, targets, asked = (np.asarray(a) for a in (generated, structured, targets, asked))
    known = asked & (targets != -100)
    tasks = {}
    binary = len(config.binary_attributes)
    columns = [i for i in range(binary) if known[:, i].any()]
    if columns:
        g, s, t, k = (a[:, columns] for a in (generated, structured, targets, known))
        tasks["attributes"] = _paired_task(g == t, s == t, k, (g == s)[k])
    for facet, indices in config.facet_label_indices.items():
        rows = known[:, indices].all(1)
        if not rows.any():
            continue
        truth = targets[rows][:, indices].argmax(1)
        g, s = _facet_choice(generated[rows][:, indices]), _facet_choice(structured[rows][:, indices])
        ones = np.ones((len(truth), 1), dtype=bool)
        tasks[facet] = _paired_task((g == truth)[:, None], (s == truth)[:, None], ones, g == s)
    return tasks


def _paired_task(correct_generated, correct_structured, known, same) -> dict:
    difference, interval = bootstrap_paired_difference(correct_generated, correct_structured, known)
    return {
        "generated": mean_accuracy(correct_generated, known),
        "structured": mean_accuracy(correct_structured, known),
        "difference": difference,
        "difference_ci95": list(interval),
        "agreement": float(np.mean(same)),
        "questions": int(known.sum()),
    }


def targets_of(records, config) -> np.ndarray:
    return np.asarray([encode_labels(json.loads(labels), config) for labels in records["labels"]])


@torch.no_grad()
def structured_predictions(
    model, processor, records, batch_size: int = 64, parsing_map_source: str = "dataset", progress=None
) -> tuple[np.ndarray, np.ndarray]:
    """(logic-consistent decisions, probabilities) of FaceInsight's attribute head for every record."""
    decisions, probabilities = [], []
    for start in range(0, len(records), batch_size):
        batch = records[start : start + batch_size]
        maps = parsing_maps_from(
            parsing_map_source, batch["image"], batch.get("parsing_map") or [None] * len(batch["image"])
        )
        inputs = processor.image_processor(batch["image"], parsing_maps=maps, return_tensors="pt")
        predicted = model.predict_face_labels(inputs["pixel_values"], inputs.get("parsing_maps"))
        decisions.append(predicted.decisions.long().cpu().numpy())
        probabilities.append(predicted.probabilities.float().cpu().numpy())
        if progress is not None:
            progress.update(len(batch["image"]))
    return np.concatenate(decisions), np.concatenate(probabilities)


def without_logic(probabilities: np.ndarray, config) -> np.ndarray:
    """Decisions without the logic module: threshold each binary attribute at 0.5, argmax within each facet."""
    raw = (probabilities >= 0.5).astype(np.int64)
    for indices in config.facet_label_indices.values():
        raw[:, indices] = 0
        raw[np.arange(len(raw)), np.asarray(indices)[probabilities[:, indices].argmax(1)]] = 1
    return raw


def structured_scores(
    model, processor, records, targets, rules: list[dict], parsing_map_source: str = "dataset", batch_size: int = 64
) -> tuple[dict, np.ndarray]:
    """FaceInsight's structured predictions scored with and without the logic module; returns (the scores, the
    logic-consistent decisions)."""
    config = model.config
    decisions, probabilities = structured_predictions(model, processor, records, batch_size, parsing_map_source)
    scores = {
        "structured": score_predictions(decisions, targets, config, rules),
        "structured_without_logic": score_predictions(without_logic(probabilities, config), targets, config, rules),
    }
    return scores, decisions


def evaluate_face_labels(
    model,
    processor,
    records,
    train_targets,
    batch_size: int = 64,
    parsing_map_source: str = "dataset",
    rules: list[dict] | None = None,
) -> dict:
    """Structured predictions (with and without the logic module) and the majority baseline, scored alike."""
    config = model.config
    targets = targets_of(records, config)
    rules = config.all_logic_rules if rules is None else rules
    majority = np.broadcast_to(majority_predictions(train_targets, config), targets.shape)
    return {
        **structured_scores(model, processor, records, targets, rules, parsing_map_source, batch_size)[0],
        "majority_baseline": score_predictions(majority, targets, config, rules),
        "parsing_map_source": parsing_map_source,
    }
