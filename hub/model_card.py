"""Model cards: Hub metadata (library, pipeline tag, licence, base models, datasets, `model-index` from evaluation
reports) and a body with the model's parts, intended use, measured results, training and limitations."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from faceinsight.hub.export import PACKAGE_ROOT

TEMPLATE = PACKAGE_ROOT / "model_card.md"
REPO_PLACEHOLDER = "MODEL_DIR_OR_ID"  # the code sample's model id until `push` fills in the repository's
TASK_METRICS = {
    "attributes": "mean attribute accuracy",
    "age": "age accuracy",
    "gender": "gender accuracy",
    "race": "race accuracy",
    "expression": "expression accuracy",
}
SOURCE_NAMES = {
    "structured": "structured predictions",
    "structured_without_logic": "structured, without logic",
    "generated": "generated answers",
    "majority_baseline": "majority-class baseline",
}


def _value(task: dict) -> float:
    return task["mean_accuracy"] if "mean_accuracy" in task else task["accuracy"]


def eval_results(evaluations: list[dict]) -> list[EvalResult]:
    """`model-index` entries: per evaluation, the model's headline row (`headline`, else structured if present, else
    generated), one metric per task. Each evaluation is {"dataset_name", "dataset_type", "split", "scores": {row name:
    score report}, optional "headline", "labels" (row name -> shown name), "note"}."""
    results = []
    for evaluation in evaluations:
        scores = evaluation["scores"]
        source = evaluation.get("headline") or ("structured" if "structured" in scores else "generated")
        for task, entry in scores[source]["tasks"].items():
            results.append(
                EvalResult(
                    task_type="image-text-to-text",
                    task_name="face perception",  # the metric names the task
                    dataset_type=evaluation["dataset_type"],
                    dataset_name=evaluation["dataset_name"],
                    dataset_split=evaluation.get("split", "test"),
                    metric_type="accuracy",
                    metric_name=f"{TASK_METRICS.get(task, task)} ({SOURCE_NAMES.get(source, source)})",
                    metric_value=round(_value(entry), 4),
                )
            )
    return results


def results_markdown(evaluations: list[dict]) -> str:
    if not evaluations:
        return (
            "No evaluation has been recorded for this folder. A folder written by `faceinsight build` holds "
            "untrained projectors and knowledge modules (with `--preset tiny`, random weights everywhere): its "
            "answers are noise. Measure it with `faceinsight eval`."
        )
    parts = []
    for evaluation in evaluations:
        scores = evaluation["scores"]
        tasks = [t for t in TASK_METRICS if any(t in s["tasks"] for s in scores.values())]
        lines = [
            f"**{evaluation['dataset_name']}** ({evaluation.get('split', 'test')} split, "
            f"{next(iter(scores.values()))['faces']} faces){': ' + evaluation['note'] if evaluation.get('note') else ''}",
            "",
            "| | " + " | ".join(tasks) + " | logic violations |",
            "|---" * (len(tasks) + 2) + "|",
        ]
        for source, score in scores.items():
            cells = []
            for task in tasks:
                entry = score["tasks"].get(task)
                cells.append(
                    "-" if entry is None else f"{_value(entry):.3f} [{entry['ci95'][0]:.3f}, {entry['ci95'][1]:.3f}]"
                )
            name = evaluation.get("labels", {}).get(source, SOURCE_NAMES.get(source, source))
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {score['logic_violation_rate']:.3f} |")
        parts.append("\n".join(lines))
    parts.append(
        "Accuracy with 95% intervals (Wilson for one facet; face-level bootstrap for the mean over "
        "attributes). Logic violations: share of faces whose predictions break a rule that holds in the "
        "split's ground truth."
    )
    return "\n\n".join(parts)


def coverage_text(config) -> str:
    """Which label nodes training data covered (config.labelled_faces), in words."""
    if config.labelled_faces is None:
        return "not recorded (no `faceinsight train` run on this folder): treat every structured output as untrained."
    covered = dict(zip(config.label_names, config.labelled_faces))
    facets = [f for f, values in config.categorical_facets.items() if any(covered[f"{f}:{v}"] for v in values)]
    attributes = [name for name in config.binary_attributes if covered[name]]
    untrained = [name for name in config.binary_attributes if not covered[name]]
    text = (
        f"facets {', '.join(facets) or 'none'}; {len(attributes)} of {len(config.binary_attributes)} binary attributes"
    )
    if untrained:
        text += f". Never trained (no training data labelled them; their outputs are noise): {', '.join(untrained)}"
    return text + "."


def optional_parts(config) -> str:
    """The card's lines for the parts a config may leave out: the region read-out, the knowledge tokens and the
    grounded words."""
    lines = []
    if config.region_readout:
        lines.append(
            "\n- Region read-out: image tokens averaged within each face region of the parsing map, read by a "
            "learned vector per (label, region) and added to the CCM's logits."
        )
    if config.knowledge_tokens:
        carried = {
            "probabilities": "the head's probabilities",
            "decisions": "the head's logic-consistent decisions (what its structured prediction says)",
        }[config.knowledge_token_source]
        lines.append(
            f"\n- Knowledge tokens: {carried} written into {config.knowledge_seq_length} tokens (one per binary "
            "attribute and facet) that the language model reads after the parsing tokens."
        )
    if config.knowledge_tokens and config.ground_knowledge_words and config.knowledge_word_token_ids:
        lines.append(
            "\n- Grounded words: where a prompt names an attribute or a facet's values, the prompt from that name up "
            "to the answer also carries the matching knowledge token."
        )
    return "".join(lines)


def render_model_card(
    config,
    repo_id: str = REPO_PLACEHOLDER,
    evaluations: list[dict] | None = None,
    base_models: list[str] | None = None,
    datasets: list[str] | None = None,
    training: str | None = None,
    license: str = "apache-2.0",
    model_name: str = "FaceInsight",
    library_name: str = "transformers",
    adapter_of: str | None = None,
) -> str:
    """The full README.md (YAML metadata + body) for a FaceInsight folder (or, with `adapter_of`, a LoRA adapter
    folder whose base is that model)."""
    evaluations = evaluations or []
    if adapter_of:
        training = (
            f"A LoRA adapter (PEFT) for `{adapter_of}`; load it with `peft.PeftModel.from_pretrained(base, "
            "adapter)` or merge it with `faceinsight merge`. If the folder holds `faceinsight_knowledge.json`, "
            "its C_hat and rules replace the base's (`faceinsight.hub.adapters.load_adapter` does this). "
            + (training or "")
        )
    data = ModelCardData(
        library_name=library_name,
        pipeline_tag="image-text-to-text",
        license=license,
        model_name=model_name,
        base_model=base_models or None,
        datasets=datasets or None,
        tags=["faceinsight", "face-perception", "facial-attributes", "facial-expression", "custom_code"],
        eval_results=eval_results(evaluations) or None,
    )
    facets = ", ".join(f"{facet} ({len(values)} values)" for facet, values in config.categorical_facets.items())
    body = TEMPLATE.read_text().format(
        model_name=model_name,
        repo_id=repo_id,
        vision_model_type=config.vision_config.model_type,
        text_model_type=config.text_config.model_type,
        image_seq_length=config.image_seq_length,
        parsing_description=(
            f"a SegFormer face parser ({config.parser_config.num_labels} CelebAMask-HQ classes) inside the model "
            "produces a label map when the caller passes none (maps passed in take precedence); "
            + (
                f"the map's classes are embedded directly as {config.parsing_seq_length} label patches (each patch's "
                "per-class pixel shares, one linear embedding)."
                if config.parsing_encoder_type == "label_patches"
                else "the map is rendered with a fixed palette, encoded by its own ViT and pooled to "
                f"{config.parsing_seq_length} tokens."
            )
        ),
        num_binary_attributes=len(config.binary_attributes),
        categorical_facets=facets or "no categorical facets",
        num_logic_rules=len(config.logic_rules),
        region_readout_line=optional_parts(config),
        coverage=coverage_text(config),
        base_models_line=f"- Built from: {', '.join(base_models)}.\n" if base_models else "",
        results=results_markdown(evaluations),
        training=training or "Not trained by `faceinsight train` (or no training report was given).",
    )
    card = ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")
    return str(card)


def card_problems(readme: str | Path) -> list[str]:
    """What keeps a README.md from being a filled model card for the Hub (empty list: none)."""
    path = Path(readme)
    if not path.is_file():
        return [f"{path.name} is missing (the model card)"]
    try:
        card = ModelCard.load(path)
    except Exception as error:  # noqa: BLE001 - any parse failure is the finding
        return [f"{path.name}: metadata does not parse ({error})"]
    problems = []
    for key in ("library_name", "pipeline_tag", "license"):
        if not getattr(card.data, key, None):
            problems.append(f"{path.name}: metadata has no {key}")
    text = card.text
    for marker in (
        "{model_name}",
        "{results}",
        "{training}",
        "{repo_id}",
        REPO_PLACEHOLDER,
        "TODO",
        "[More Information Needed]",
    ):
        if marker in text:
            problems.append(f"{path.name}: unfilled placeholder {marker!r}")
    for base in card.data.base_model or []:
        if base.startswith(("/", "./", "../", "~")) or Path(base).exists():
            problems.append(f"{path.name}: base_model names a local path ({base}); on the Hub it must be a repo id")
    for heading in ("## Intended use", "## Results", "## Limitations"):
        if heading not in text:
            problems.append(f"{path.name}: no '{heading[3:]}' section")
    return problems
