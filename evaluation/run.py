"""Evaluation (the library behind `faceinsight eval` and the demo): accuracy on the paper's three tasks for
FaceInsight or any `image-text-to-text` model.

Every model is asked closed questions through `pipeline("image-text-to-text")` and scored from its parsed answers;
a FaceInsight model is also scored from its structured predictions (with and without the logic module). Rules for
the logic-violation rate come from the evaluated split's own ground truth (rules that hold there without exception,
plus one value per categorical facet), so every model is held to the same rules. Writes `eval_report.json`,
`answers.jsonl` and pictures to the output folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from faceinsight.evaluation.report import plot_attribute_accuracy, plot_confusion_matrix, plot_variants


def load_split(
    dataset: str,
    split: str = "test",
    dataset_dir: str | None = None,
    limit: int | None = None,
    num_faces: int = 1000,
    seed: int = 0,
    image_size: int = 64,
    on_error: str = "raise",
    verify_images: bool = True,
    parsing_maps_dir: str | None = None,
):
    """(records of `split`, training records or None, the reader's report): the training records give the majority
    baseline; the report counts what was read and skipped. `parsing_maps_dir`: maps `faceinsight parse` wrote for the
    records' images (see `face_datasets.attach_parsing_maps`)."""
    from faceinsight.training import face_datasets

    if dataset == "synthetic":
        count = min(num_faces, limit) if limit else num_faces
        records, _ = face_datasets.synthetic_faces(count, seed, image_size, split)
        train, _ = face_datasets.synthetic_faces(min(2000, max(count, 200)), seed, image_size, "train")
        return records, train, {"dataset": "synthetic", "rows": count, "skipped": {}}
    everything, report = face_datasets.read_named_dataset(
        dataset, dataset_dir, on_error, flag="--dataset", verify_images=verify_images
    )
    records = everything.filter(lambda s: s == split, input_columns="split")
    if len(records) == 0:
        splits = sorted(set(everything["split"]))
        raise ValueError(f"--split {split}: {dataset} has no such rows (its splits: {', '.join(splits)})")
    if limit:
        records = records.select(range(min(limit, len(records))))
    if parsing_maps_dir:
        records = face_datasets.attach_parsing_maps(records, parsing_maps_dir)
    train = everything.filter(lambda s: s == "train", input_columns="split")
    return records, (train if len(train) else None), report


def load_model(model_name_or_path: str, trust_remote_code: bool = False):
    """(model, processor) through the Auto classes, safetensors only. No model's own code runs unless
    `trust_remote_code` is said (a FaceInsight folder loads with this package's classes)."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from faceinsight.hub.validate import trust_remote_code_for

    trust_remote_code = trust_remote_code_for(model_name_or_path, trust_remote_code)
    model = AutoModelForImageTextToText.from_pretrained(
        model_name_or_path, trust_remote_code=trust_remote_code, use_safetensors=True
    )
    processor = AutoProcessor.from_pretrained(model_name_or_path, trust_remote_code=trust_remote_code)
    return model.eval(), processor


def image_size_of(processor) -> int:
    size = getattr(processor.image_processor, "size", 64)
    if isinstance(size, int):
        return size
    for key in ("height", "shortest_edge", "longest_edge"):
        value = size.get(key) if hasattr(size, "get") else getattr(size, key, None)
        if value:
            return int(value)
    return 64


def default_schema():
    from faceinsight.modeling.schema_faceinsight import FACE_ATTRIBUTES, LabelSchema

    return LabelSchema(binary_attributes=FACE_ATTRIBUTES)


def score_descriptions(model, processor, records, count: int, schema, output_dir: Path, batch_size: int) -> dict:
    """The first `count` faces described through the pipeline, each stated fact scored (evaluation/descriptions.py)."""
    from transformers import pipeline

    from faceinsight.evaluation.descriptions import describe_and_score

    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    described = records.select(range(min(count, len(records))))
    scores, descriptions = describe_and_score(pipe, described, schema, output_dir, batch_size)
    return {"description_scores": scores, "described_faces": len(described), "descriptions": descriptions}


def evaluate(
    model,
    processor,
    records,
    train_records=None,
    output_dir: str | Path = "eval",
    name: str = "model",
    attribute_questions: int | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 16,
    generated: bool = True,
    structured: bool | None = None,
    parsing_map_source: str = "parser",
    data: dict | None = None,
    descriptions: int = 0,
) -> dict:
    """Score one loaded model on `records`; write the report and pictures into `output_dir`; return the report.
    `data`: the dataset reader's report (rows read, skipped), kept in the report. `descriptions`: ask that many faces
    for a free-text description and score its facts (`description_scores`, see evaluation/descriptions.py)."""
    import numpy as np

    from faceinsight.evaluation.descriptions import score_descriptions as score_facts
    from faceinsight.evaluation.structured import (
        majority_predictions,
        paired_comparison,
        score_predictions,
        structured_scores,
        targets_of,
    )
    from faceinsight.modeling.knowledge_faceinsight import held_out_rules

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    has_structured = hasattr(model, "predict_face_labels")
    structured = has_structured if structured is None else structured
    if structured and not has_structured:
        raise ValueError(f"{name}: structured predictions need a FaceInsight model; this is {type(model).__name__}")
    schema = model.config if has_structured else default_schema()
    targets = targets_of(records, schema)
    rules = held_out_rules(targets.tolist(), schema)
    report = {
        "model": name,
        "model_class": type(model).__name__,
        "faces": len(records),
        "rules": rules,
        "data": data or {},
        "scores": {},
    }

    if generated:
        args = (attribute_questions, batch_size, max_new_tokens)
        answers = score_generated_answers(model, processor, records, targets, schema, rules, args, output_dir)
        report["scores"]["generated"] = answers.pop("score")
        generated_answers, asked = answers.pop("predictions"), answers.pop("asked")
        report.update(answers)
    described = []
    if descriptions:
        report.update(score_descriptions(model, processor, records, descriptions, schema, output_dir, batch_size))
        described = report.pop("descriptions")
    if structured:
        scores, decisions = structured_scores(model, processor, records, targets, rules, parsing_map_source)
        report["scores"].update(scores)
        report["structured_parsing_map_source"] = parsing_map_source
        if generated:  # the same model's two readings of the same faces, question by question
            report["generated_vs_structured"] = paired_comparison(generated_answers, decisions, targets, asked, schema)
        if described:  # each stated fact against the same model's decision for that label node
            from faceinsight.modeling.schema_faceinsight import NOT_STATED

            # the facts a training description states (Male and No_Beard are said by the gender and the beards)
            decided = [schema.decided_labels(row) for row in decisions[: len(described)]]
            decided = [{k: v for k, v in labels.items() if k not in NOT_STATED} for labels in decided]
            # "precision": the share of stated facts that agree with the decision; "recall": of decided facts stated
            report["description_vs_structured"] = score_facts(described, decided, schema)
    if train_records is not None:
        majority = majority_predictions(targets_of(train_records, schema).tolist(), schema)
        report["scores"]["majority_baseline"] = score_predictions(
            np.broadcast_to(majority, targets.shape), targets, schema, rules
        )
    report["pictures"] = write_pictures(report["scores"], output_dir, name)
    (output_dir / "eval_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def score_generated_answers(model, processor, records, targets, schema, rules, ask, output_dir: Path) -> dict:
    """Closed questions asked through `pipeline("image-text-to-text")` (`ask`: attribute questions per face, batch
    size, new tokens), answers read and scored; the transcript goes to `answers.jsonl`. Returns the score, the
    number of questions and of unreadable answers, and the predictions with the mask of what was asked."""
    import numpy as np
    from transformers import pipeline

    from faceinsight.evaluation.generated import generated_predictions
    from faceinsight.evaluation.structured import score_predictions

    pipe = pipeline("image-text-to-text", model=model, processor=processor)
    predictions, asked, transcript = generated_predictions(pipe, records, schema, *ask)
    with open(output_dir / "answers.jsonl", "w") as handle:
        for entry in transcript:
            handle.write(json.dumps(entry) + "\n")
    return {
        "score": score_predictions(predictions, np.where(asked, targets, -100), schema, rules),
        "unreadable_answers": sum(entry["read_as"] is None for entry in transcript),
        "questions": len(transcript),
        "predictions": predictions,
        "asked": asked,
    }


def write_pictures(scores: dict, output_dir: Path, name: str) -> list[str]:
    pictures = []
    for source, score in scores.items():
        if source == "majority_baseline":
            continue
        for facet in ("expression", "age", "gender", "race"):
            if facet in score["tasks"]:
                path = output_dir / f"confusion_{facet}_{source}.png"
                pictures.append(plot_confusion_matrix(score["tasks"][facet], f"{name}: {facet} ({source})", path).name)
    if any("attributes" in s["tasks"] for s in scores.values()):
        pictures.append(plot_attribute_accuracy(scores, output_dir / "attribute_accuracy.png", name).name)
    pictures.append(plot_variants(scores, output_dir / "tasks.png", f"{name}: accuracy with 95% intervals").name)
    return pictures
