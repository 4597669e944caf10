"""`faceinsight demo`: the whole pipeline on the embedded synthetic faces, offline, on a CPU.

Builds a small FaceInsight, trains its face parser, trains the model and seven variants (knowledge tokens that carry
the head's probabilities instead of its decisions, no grounded words, no knowledge tokens, no parsing map, no CCM, no
LCM, the rendered-map parsing encoder) and transformers' own LLaVA of the same sizes and starting weights (the paper's
fine-tuned general MLLM) with one shared recipe, data and seed; scores every variant's structured predictions on
held-out faces and every model's generated answers and descriptions (95% intervals), writes the Hub-ready folder
with its model card, reloads it in a fresh process through `AutoModel.from_pretrained(..., trust_remote_code=True)`
and `pipeline("image-text-to-text")`, and prints a report.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

# One recipe for every variant; a variant only switches one component off. The model trains on the maps its own
# (trained) parser makes, the maps it will see in use; the no-parsing ablation gets blank maps instead.
VARIANTS = {
    "full": ["--parsing_map_source", "parser"],
    "probability tokens": ["--parsing_map_source", "parser", "--knowledge_token_source", "probabilities"],
    "no grounded words": ["--parsing_map_source", "parser", "--ground_knowledge_words", "false"],
    "no knowledge tokens": ["--parsing_map_source", "parser", "--knowledge_tokens", "false"],  # nor grounded words
    "no parsing map": ["--parsing_map_source", "blank"],
    "no CCM": ["--parsing_map_source", "parser", "--use_correlation_graph", "false"],
    "no LCM": ["--parsing_map_source", "parser", "--use_logic_rules", "false"],
    # the parsing encoder folders saved before label patches hold (issue 24): a second tower reading the rendered map
    "rendered-map encoder": ["--parsing_map_source", "parser"],
}
# variants built differently from the base (config overrides of `build_tiny`); the same trained parser is put in
VARIANT_BUILDS = {"rendered-map encoder": {"parsing_encoder_type": "vision_tower"}}
# the photo enlarged for the parser: a SegFormer's logits are at a quarter of its input, 16 x 16 at 64 px, too coarse
# for brows and lips (held-out IoU 0.11 and 0.24 at 64 px, 0.25 and 0.26-0.33 at 128 px, 1500 steps)
PARSER_IMAGE_SIZE = 128
# The tiny LM starts random, so it trains in full: with LoRA (r=16 on every linear layer) it stays at 5.2 nats per
# answer token after 500 steps and answers every yes/no question "No"; trained in full it reaches 0.36
# The tiny tower starts random too, so it trains (frozen, a random tower's features hold no expression: a linear
# probe on them reads 0.28, below the majority class)
RECIPE_FLAGS = ["--train_language_model", "true", "--train_vision_tower", "true"]
# The paper's training protocol: a mixture of datasets that each label one task (CelebA/LFWA attributes, FairFace/
# UTKFace age-gender-race, RAF-DB/AffectNet expression), here a third of the synthetic faces each; held-out faces
# carry every label, so each task is scored on the same faces
PROTOCOL = "synthetic:attributes,synthetic:age_gender_race,synthetic:expression"
LLAVA_BASELINE = "LLaVA baseline"  # transformers' LlavaForConditionalGeneration, same sizes, recipe, data and seed
FREE_DESCRIPTIONS = "full, free descriptions"  # the full model's descriptions without grounding (not a training)
QUESTIONS = [
    "What is the gender of this person? Options: male, female.",
    "Which facial expression does this person show? Options: surprise, fear, disgust, happiness, sadness, "
    "anger, neutral. Answer with one option.",
    "Does this person have the attribute 'eyeglasses'? Answer yes or no.",
]


@dataclass
class DemoSettings:
    """The default: the whole pipeline within 10 minutes on 2 CPU cores (eight trainings of 60 steps each), too short
    a training to tell the variants apart; `--full` trains them for the README's table."""

    output_dir: str = "outputs/demo"
    protocol: str = PROTOCOL
    train_faces: int = 2000
    validation_faces: int = 500
    eval_faces: int = 500
    parser_faces: int = 2000
    parser_steps: int = 300
    steps: int = 60
    batch_size: int = 16
    learning_rate: float = 3e-3
    answer_faces: int = 20
    seed: int = 0


# --full: the README's table (about 24 minutes on 2 CPU cores with nothing else running); --quick: a smoke run of the same code (2 minutes)
FULL = dict(train_faces=8000, eval_faces=1000, parser_steps=1500, steps=500, answer_faces=60)
QUICK = dict(
    train_faces=48,
    validation_faces=24,
    eval_faces=40,
    parser_faces=24,
    parser_steps=4,
    steps=4,
    batch_size=8,
    answer_faces=2,
)


class Steps:
    def __init__(self, total: int):
        self.total, self.done, self.started, self.timings = total, 0, time.perf_counter(), {}

    def __call__(self, title: str, label: str):
        """A step shown as `title`; its time is reported under `label`."""
        self.done += 1
        self.current = label
        self.clock = time.perf_counter()
        print(f"\n[{self.done}/{self.total}] {title}", flush=True)
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.timings[self.current] = round(time.perf_counter() - self.clock, 1)


def write_parser_pairs(folder: Path, faces: int, seed: int, size: int) -> tuple[Path, Path]:
    """Synthetic training faces and their exact maps as files, the layout `faceinsight train-parser` reads."""
    from faceinsight.parsing.labels import to_palette_image
    from faceinsight.training.synthetic import synthetic_face

    images, maps = folder / "images", folder / "maps"
    images.mkdir(parents=True, exist_ok=True)
    maps.mkdir(parents=True, exist_ok=True)
    for index in range(faces):
        face = synthetic_face(index, seed=seed * 10, size=size)  # the training stream
        face["image"].save(images / f"{index:05d}.png")
        to_palette_image(face["parsing_map"]).save(maps / f"{index:05d}.png")
    return images, maps


def variant_arguments(base: Path, output_dir: Path, flags: list[str], settings: DemoSettings) -> list[str]:
    """`faceinsight train`'s arguments for one variant: the one recipe, then the variant's flags."""
    options = {
        "model_name_or_path": base,
        "output_dir": output_dir,
        "dataset_name": settings.protocol,
        "stage": "stage2",
        "num_train_faces": settings.train_faces,
        "num_validation_faces": settings.validation_faces,
        "num_eval_faces": 0,
        "max_steps": settings.steps,
        "per_device_train_batch_size": settings.batch_size,
        "learning_rate": settings.learning_rate,
        "lr_scheduler_type": "constant",
        "logging_steps": max(1, settings.steps // 5),
        "save_strategy": "no",
        "seed": settings.seed,
    }
    argv = [item for key, value in options.items() for item in (f"--{key}", str(value))]
    return [*argv, *RECIPE_FLAGS, *flags]


def base_built_as(base: Path, folder: Path, overrides: dict | None, settings: DemoSettings) -> Path:
    """`base` itself, or (with `overrides`) the tiny preset built with them from the same seed, holding `base`'s
    trained parser and its input size."""
    if not overrides:
        return base
    from transformers import AutoProcessor

    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.hub.build import build_tiny
    from faceinsight.hub.export import save_model_folder

    trained = FaceInsightForConditionalGeneration.from_pretrained(base, use_safetensors=True)
    model, _ = build_tiny(seed=settings.seed, **overrides)
    model.model.parser.load_state_dict(trained.model.parser.state_dict())
    model.config.parser_image_size = trained.config.parser_image_size
    save_model_folder(model, AutoProcessor.from_pretrained(base), folder)
    return folder


def train_variant(base: Path, output_dir: Path, flags: list[str], settings: DemoSettings):
    from faceinsight.commands.train import parse_arguments
    from faceinsight.training.train import run_training

    return run_training(*parse_arguments(variant_arguments(base, output_dir, flags, settings)))


def train_llava_baseline(base: Path, output_dir: Path, settings: DemoSettings):
    """The paper's fine-tuned general MLLM: transformers' own LLaVA with the base's tower, projector and LM (same
    sizes, same starting weights), trained by TRL's SFTTrainer with its own collator on the same conversations, with
    the SFTConfig `faceinsight train` parses for the variants (one recipe, one seed). Returns (model, processor)."""
    from transformers import AutoProcessor, set_seed
    from trl import SFTTrainer

    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.commands.train import parse_arguments
    from faceinsight.hub.build import TINY_IMAGE_SIZE, plain_llava_like
    from faceinsight.training.instructions import to_conversations
    from faceinsight.training.train import load_records

    script_args, training_args, _ = parse_arguments(variant_arguments(base, output_dir, [], settings))
    set_seed(training_args.seed)
    source = FaceInsightForConditionalGeneration.from_pretrained(base, use_safetensors=True)
    model, processor = plain_llava_like(source.config, AutoProcessor.from_pretrained(base))
    for part in ("vision_tower", "multi_modal_projector", "language_model"):
        getattr(model.model, part).load_state_dict(getattr(source.model, part).state_dict())
    model.lm_head.load_state_dict(source.lm_head.state_dict())
    # every part trains, as in the variants (RECIPE_FLAGS: the random tower and LM in full)
    records = load_records(script_args, TINY_IMAGE_SIZE, training_args.seed)[0]  # the variants' training faces
    conversations = to_conversations(records, source.config, seed=training_args.seed)
    dataset = conversations.remove_columns(["parsing_map", "face_labels"])
    # trained on the assistant's answers only, as FaceInsight's collator does (the template marks them)
    training_args.assistant_only_loss = True
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {"skip_prepare_dataset": True}
    trainer = SFTTrainer(model=model, args=training_args, train_dataset=dataset, processing_class=processor)
    trainer.train()
    model.eval()
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    return model, processor


def parsing_sheet(model, processor, records, path: Path, faces: int = 6) -> Path:
    """Rows of held-out faces: photo | exact map | the trained parser's map (overlays), with the colour legend."""
    from PIL import Image

    from faceinsight.parsing.labels import overlay, sheet_with_legend

    batch = records[:faces]
    inputs = processor.image_processor(batch["image"], return_tensors="pt")
    predicted = model.model.parse_faces(inputs["pixel_values"]).cpu().numpy()
    rows = []
    for image, exact, parsed in zip(batch["image"], batch["parsing_map"], predicted):
        exact = np.asarray(exact)
        parsed = np.asarray(Image.fromarray(parsed.astype(np.uint8)).resize(exact.shape[::-1], Image.NEAREST))
        rows.append([image.convert("RGB"), overlay(image, exact), overlay(image, parsed)])
    sheet_with_legend(["photo", "exact map", "trained parser"], rows, cell=128).save(path)
    return path


def run_demo(settings: DemoSettings) -> dict:
    """The demo's eight steps, each timed; returns the report it writes to `demo_report.json`."""
    from transformers import AutoProcessor

    from faceinsight.hub.build import build_tiny
    from faceinsight.hub.export import save_model_folder

    out = Path(settings.output_dir)
    steps = Steps(8)
    with steps("build a small FaceInsight (random weights, offline)", "build"):
        model, processor = build_tiny(seed=settings.seed)
        save_model_folder(model, processor, out / "work" / "base")
    with steps(f"train its face parser on {settings.parser_faces} synthetic faces with exact maps", "parser"):
        base, parser_report = train_demo_parser(out, settings)
    with steps(
        f"train the model, {len(VARIANTS) - 1} ablations and the LLaVA baseline ({settings.steps} steps each, one "
        f"recipe, seed {settings.seed})",
        "training",
    ):
        folders = {}
        for name, flags in VARIANTS.items():
            print(f"--- {name}", flush=True)
            folders[name] = out / "model" if name == "full" else out / "work" / "ablations" / slug(name)
            variant_base = base_built_as(base, out / "work" / f"base_{slug(name)}", VARIANT_BUILDS.get(name), settings)
            train_variant(variant_base, folders[name], flags, settings)
        print(f"--- {LLAVA_BASELINE}", flush=True)
        llava = train_llava_baseline(base, out / "work" / slug(LLAVA_BASELINE), settings)
    with steps(f"evaluate on {settings.eval_faces} held-out synthetic faces", "evaluation"):
        held_out, scores, loaded, rules = score_variants(folders, processor, settings)
    with steps(
        f"ask every model closed questions about {settings.answer_faces} faces and for their descriptions", "answers"
    ):
        models = {name: (model, AutoProcessor.from_pretrained(folders[name])) for name, model in loaded.items()}
        answers = ask_every_model({**models, LLAVA_BASELINE: llava}, held_out, settings.answer_faces, out)
    full_processor = answers["full"]["processor"]
    with steps("write pictures and the model card", "pictures and card"):
        pictures = write_pictures(loaded["full"], full_processor, held_out, scores, out)
        generated = {
            name: answer["scores"]["generated"] for name, answer in answers.items() if name != FREE_DESCRIPTIONS
        }
        write_model_card(loaded["full"].config, scores, generated, parser_report, settings, out / "model")
    with steps(
        "reload the folder in a fresh process (AutoModel + pipeline, trust_remote_code) and ask it",
        "fresh-process reload",
    ):
        reload = ask_fresh_process(out / "model", held_out[0], out / "example_face.png")
    with steps("report", "report"):
        report = demo_report(settings, parser_report, scores, rules, answers, reload, out, pictures, steps)
        (out / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
        print_report(report)
    return report


def demo_report(settings, parser_report, scores, rules, answers, reload, out, pictures, steps) -> dict:
    """What `demo_report.json` holds (see the README's "The demo")."""
    answered = {name: answer for name, answer in answers.items() if name != FREE_DESCRIPTIONS}
    return {
        "settings": asdict(settings),
        "parser": {k: parser_report[k] for k in ("mean_iou", "baseline_mean_iou", "per_class_iou")},
        "scores": scores,
        "rules_from_held_out_ground_truth": len(rules),
        "generated_answers": {
            "faces": settings.answer_faces,
            "questions": {name: answer["questions"] for name, answer in answered.items()},
            "unreadable": {name: answer["unreadable_answers"] for name, answer in answered.items()},
        },
        "generated_scores": {name: answer["scores"]["generated"] for name, answer in answered.items()},
        "generated_vs_structured": {
            name: answer["generated_vs_structured"]
            for name, answer in answers.items()
            if "generated_vs_structured" in answer
        },
        "description_scores": {name: answer["description_scores"] for name, answer in answers.items()},
        "description_vs_structured": {
            name: answer["description_vs_structured"]
            for name, answer in answers.items()
            if "description_vs_structured" in answer
        },
        "answer_diversity": {
            name: answer_diversity(out / "generated_answers" / slug(name) / "answers.jsonl") for name in answered
        },
        "fresh_process": {k: reload[k] for k in ("AutoModel", "answers", "truth", "faceinsight_imported")},
        "model_dir": str(out / "model"),
        "pictures": [str(p) for p in pictures],
        "seconds": steps.timings,
        "total_seconds": round(time.perf_counter() - steps.started, 1),
    }


def parsing_map_source(variant: str) -> str:
    """The maps a variant is scored with: its trained parser's (a user has no exact maps), blank without parsing."""
    return "blank" if variant == "no parsing map" else "parser"


def slug(name: str) -> str:
    return name.replace(" ", "_")


def ask_every_model(models: dict, held_out, faces: int, out: Path) -> dict:
    """Each model's generated answers to closed questions about `faces` held-out faces and its free-text
    descriptions of them (fact precision and recall), through its (model, processor) pair: the processor a user loads
    from the model's folder; a FaceInsight's answers are also compared with its structured decisions on the same
    questions. Per model, the evaluation's report with that processor under "processor"."""
    from faceinsight.evaluation.run import evaluate

    records = held_out.select(range(faces))
    reports = {}
    for name, (model, processor) in models.items():
        print(f"--- {name}", flush=True)
        folder = out / "generated_answers" / slug(name)
        # a FaceInsight's structured decisions on the same faces too: its answers compared question by question
        maps = parsing_map_source(name)
        reports[name] = evaluate(
            model, processor, records, None, folder, name, descriptions=faces, parsing_map_source=maps
        )
        reports[name]["processor"] = processor
    full = models["full"][0]
    if full.config.grounded_descriptions:  # the same model's descriptions generated freely, for comparison
        print(f"--- {FREE_DESCRIPTIONS}", flush=True)
        full.config.grounded_descriptions = False
        try:
            folder = out / "generated_answers" / slug(FREE_DESCRIPTIONS)
            reports[FREE_DESCRIPTIONS] = evaluate(
                full, models["full"][1], records, None, folder, FREE_DESCRIPTIONS, generated=False, descriptions=faces
            )
        finally:
            full.config.grounded_descriptions = True
    return reports


def ask_fresh_process(model_dir: Path, face: dict, example: Path) -> dict:
    """The folder loaded in a new Python process the way a user loads it and asked QUESTIONS about `face`; the
    ground truth for those questions under "truth"."""
    from faceinsight.hub.validate import run_load_check

    face["image"].save(example)
    reload = run_load_check(model_dir, example, tuple(QUESTIONS))
    truth = json.loads(face["labels"])
    reload["truth"] = [truth.get("gender"), truth.get("expression"), "yes" if truth.get("Eyeglasses") else "no"]
    return reload


def train_demo_parser(out: Path, settings: DemoSettings) -> tuple[Path, dict]:
    """The base model's parser trained on synthetic faces with exact maps; returns the new base folder and the
    parser's report."""
    from faceinsight.hub.build import TINY_IMAGE_SIZE
    from faceinsight.parsing.train import pairs_from_folders, train_parser

    folder = out / "work" / "parser_data"
    images, maps = write_parser_pairs(folder, settings.parser_faces, settings.seed, TINY_IMAGE_SIZE)
    pairs, _ = pairs_from_folders(str(images), str(maps))
    base = out / "work" / "base_with_parser"
    report = train_parser(
        str(base),
        pairs,
        model_name_or_path=str(out / "work" / "base"),
        eval_fraction=0.1,
        max_steps=settings.parser_steps,
        image_size=PARSER_IMAGE_SIZE,
        per_device_train_batch_size=16,
        learning_rate=3e-3,
        save_steps=10**9,
        seed=settings.seed,
    )
    print(f"parser: held-out mean IoU {report['mean_iou']:.3f} (constant baseline {report['baseline_mean_iou']:.3f})")
    return base, report


def score_variants(folders: dict[str, Path], processor, settings: DemoSettings):
    """Every variant's structured predictions on held-out faces, scored against the ground truth, beside the full
    model on exact maps and the train split's majority answers. Returns (faces, scores, loaded models, rules)."""
    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.commands.train import parse_arguments
    from faceinsight.evaluation.report import task_table
    from faceinsight.evaluation.structured import (
        majority_predictions,
        rules_seen_together,
        score_predictions,
        structured_predictions,
        targets_of,
        violation_rate,
        without_logic,
    )
    from faceinsight.hub.build import TINY_IMAGE_SIZE
    from faceinsight.modeling.knowledge_faceinsight import held_out_rules
    from faceinsight.training.face_datasets import synthetic_faces
    from faceinsight.training.train import load_records

    held_out, _ = synthetic_faces(settings.eval_faces, settings.seed, TINY_IMAGE_SIZE, "test")  # every label known
    script_args = parse_arguments(variant_arguments(folders["full"], folders["full"], [], settings))[0]
    train_records = load_records(script_args, TINY_IMAGE_SIZE, settings.seed)[0]  # the majority: of what trained
    schema = FaceInsightForConditionalGeneration.config_class.from_pretrained(folders["full"])
    targets = targets_of(held_out, schema)
    rules = held_out_rules(targets.tolist(), schema)
    seen = rules_seen_together(rules, targets_of(train_records, schema), schema)  # what training labels can teach
    scores, loaded = {}, {}

    def score(decisions):
        scored = score_predictions(decisions, targets, schema, rules)
        scored["logic_violation_rate_of_rules_seen_in_training"] = violation_rate(decisions, seen, schema)
        return scored

    for name, folder in folders.items():
        loaded[name] = FaceInsightForConditionalGeneration.from_pretrained(folder, use_safetensors=True).eval()
        decisions, probabilities = structured_predictions(
            loaded[name], processor, held_out, parsing_map_source=parsing_map_source(name)
        )
        scores[name] = score(decisions)
        if name == "full":  # the same model and probabilities, decided by thresholds instead of the LCM
            scores["full, thresholds"] = score(without_logic(probabilities, schema))
    decisions, _ = structured_predictions(loaded["full"], processor, held_out, parsing_map_source="dataset")
    scores["full, exact maps"] = score(decisions)
    majority = majority_predictions(targets_of(train_records, schema).tolist(), schema)
    scores["majority baseline"] = score(np.broadcast_to(majority, targets.shape))
    print(task_table(scores))
    return held_out, scores, loaded, rules


def write_pictures(model, processor, held_out, scores: dict, out: Path) -> list[Path]:
    from faceinsight.evaluation.report import plot_attribute_accuracy, plot_confusion_matrix, plot_variants

    shown = {k: v for k, v in scores.items() if k not in ("full, exact maps", "full, thresholds")}
    full_and_majority = {k: scores[k] for k in ("full", "majority baseline")}
    expression = scores["full"]["tasks"]["expression"]
    return [
        parsing_sheet(model, processor, held_out, out / "parsing_maps.png"),
        plot_variants(shown, out / "results.png", "full model vs ablations (95% intervals)"),
        plot_attribute_accuracy(full_and_majority, out / "attribute_accuracy.png"),
        plot_confusion_matrix(expression, "full model: expression", out / "confusion_expression.png"),
    ]


def write_model_card(config, scores: dict, generated: dict, parser_report: dict, settings: DemoSettings, folder: Path):
    from faceinsight.hub.model_card import render_model_card

    evaluation = {
        "dataset_name": "FaceInsight synthetic faces",
        "dataset_type": "faceinsight-synthetic",
        "split": "test",
        "scores": scores,
        "headline": "full",
        "note": "structured predictions; every variant trained and scored with its trained parser's "
        "maps (blank without parsing), same recipe and seed",
    }
    generated_eval = {
        "dataset_name": "FaceInsight synthetic faces (generated answers)",
        "dataset_type": "faceinsight-synthetic",
        "split": "test",
        "scores": generated,
        "headline": "full",
        "note": f"answers to closed questions about {settings.answer_faces} held-out faces; the {LLAVA_BASELINE} is "
        "transformers' LLaVA of the same sizes and starting weights, trained with the same recipe, data and seed",
    }
    training = (
        f"`faceinsight demo`: stage-2 recipe with the LM trained in full (the tiny LM starts random), projectors and "
        f"knowledge modules trained in full, on the trained parser's maps, {settings.steps} steps of batch "
        f"{settings.batch_size}, learning rate {settings.learning_rate} constant, on {settings.train_faces} synthetic "
        f"faces; parser trained {settings.parser_steps} steps (held-out mean IoU {parser_report['mean_iou']:.3f}). "
        "Random tiny towers and LM: this model exists to show the pipeline, not to describe real faces."
    )
    card = render_model_card(
        config,  # the code sample's repo id is filled in by `push`
        evaluations=[evaluation, generated_eval],
        training=training,
        model_name="FaceInsight demo (tiny, synthetic faces)",
    )
    (folder / "README.md").write_text(card)


def answer_diversity(answers_file: Path) -> dict[str, int]:
    """Per question kind, how many different answers (as read) the faces got: 1 everywhere means the LM answers the
    same whatever the picture."""
    seen = {}
    for line in answers_file.read_text().splitlines():
        entry = json.loads(line)
        seen.setdefault(entry["label"], set()).add(str(entry["read_as"]))
    return {label: len(values) for label, values in sorted(seen.items())}


def print_report(report: dict) -> None:
    from faceinsight.evaluation.report import paired_table, task_table

    settings = report["settings"]
    print("\n" + "=" * 100)
    print(
        f"FaceInsight demo: {settings['eval_faces']} held-out synthetic faces, structured predictions, accuracy [95% "
        f"interval]; every variant trained with the same recipe and seed {settings['seed']}"
    )
    print(task_table(report["scores"]))
    print(
        "attributes: mean accuracy over the drawn CelebA attributes (face-level bootstrap interval); age, gender, "
        "race, expression: accuracy (Wilson interval). 'logic violations': share of faces whose predictions break "
        "a rule that holds in the held-out ground truth. Every variant is trained and scored with the maps its trained "
        "parser makes (blank for 'no parsing map'); 'full, exact maps' scores the full model with the generator's "
        "exact maps instead."
    )
    seen = {
        name: scores.get("logic_violation_rate_of_rules_seen_in_training") for name, scores in report["scores"].items()
    }
    print(
        "logic violations of the held-out rules that training could see (both labels on one training face): "
        + ", ".join(f"{name} {rate:.3f}" for name, rate in seen.items() if rate is not None)
    )
    generated = report["generated_answers"]
    print(
        f"\ngenerated answers to closed questions about {generated['faces']} of those faces (unreadable answers "
        f"count wrong: {', '.join(f'{name} {count}' for name, count in generated['unreadable'].items())}):"
    )
    print(task_table(report["generated_scores"]))
    print(
        "\nthe same answers less each model's structured decisions on the same questions (difference, paired 95% "
        "interval; 'alike': share of questions both answer the same):"
    )
    print(paired_table(report["generated_vs_structured"]))
    print_descriptions(report["description_scores"], generated["faces"])
    print(
        "\nthe same descriptions against each model's own decisions (agreement of stated facts / decided facts stated):"
    )
    print_descriptions(report["description_vs_structured"], generated["faces"], header=False)
    print_diversity(report["answer_diversity"]["full"], generated["faces"])
    print(
        f"\nparser: held-out mean IoU {report['parser']['mean_iou']:.3f} "
        f"(constant baseline {report['parser']['baseline_mean_iou']:.3f})"
    )
    fresh = report["fresh_process"]
    print(
        f"\nreloaded in a fresh process as {fresh['AutoModel']} (faceinsight not importable), asked about "
        "example_face.png (a held-out face):"
    )
    for (question, answer), truth in zip(fresh["answers"].items(), fresh["truth"]):
        shown = " ".join(answer.split())[:100] or "(an empty answer)"
        print(f"  Q: {question}\n  A: {shown}   (truth: {truth})")
    model_dir = report["model_dir"]
    print(f"\nHub-ready model folder: {model_dir}  (model card: {model_dir}/README.md)")
    print(f"pictures: {', '.join(report['pictures'])}")
    print(f'ask it more:  faceinsight ask {model_dir} IMAGE "Is this person smiling?" --attributes')
    print(f"evaluate it:  faceinsight eval --model {model_dir} --dataset synthetic")
    print(f"publish it:   faceinsight push {model_dir} --repo-id ORG/NAME --dry-run")
    print(f"took {report['total_seconds']:.0f} s: " + ", ".join(f"{k} {v:.0f} s" for k, v in report["seconds"].items()))


def print_descriptions(description_scores: dict, faces: int, header: bool = True) -> None:
    """Fact precision (1 - hallucination rate) / recall per task and model; '-' where nothing was stated."""
    tasks = ("attributes", "age", "gender", "race", "expression")
    if header:
        print(
            f"\ndescriptions of {faces} faces: fact precision / recall per task (precision's 95% interval in the report)"
        )
    print(f"{'model':<22}" + "".join(f"{task:>16}" for task in tasks))
    for name, scores in description_scores.items():
        cells = []
        for task in tasks:
            if task not in scores:
                cells.append("- / -")
                continue
            precision, recall = scores[task]["precision"], scores[task]["recall"]
            cells.append(
                f"{'-' if precision is None else f'{precision:.2f}'} / {'-' if recall is None else f'{recall:.2f}'}"
            )
        print(f"{name:<22}" + "".join(f"{cell:>16}" for cell in cells))


def print_diversity(diversity: dict, faces: int) -> None:
    same = [label for label, count in diversity.items() if count == 1]
    facets = [label for label in ("age", "gender", "race", "expression") if label in diversity]
    varied = [label for label, count in diversity.items() if label not in facets and count > 1]
    attributes = len(diversity) - len(facets)
    print(
        f"the full model's different answers across the {faces} faces: "
        + ", ".join(f"{label} {diversity[label]}" for label in facets)
        + f"; {len(varied)} of {attributes} attribute questions got more than one answer"
    )
    if len(same) == len(diversity):
        print("every face got the same answers: the language model answers without reading the picture")


# what the demo writes into its folder: the only entries --overwrite replaces
DEMO_ENTRIES = ("model", "work", "generated_answers", "demo_report.json", "*.png")


def parser():
    import argparse

    from faceinsight.commands._common import add_overwrite

    parser = argparse.ArgumentParser(prog="faceinsight demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", help=f"default: {DemoSettings.output_dir}")
    for name in (
        "train_faces",
        "validation_faces",
        "eval_faces",
        "parser_faces",
        "parser_steps",
        "steps",
        "batch_size",
        "answer_faces",
        "seed",
    ):
        parser.add_argument(f"--{name}", type=int, help=f"default: {getattr(DemoSettings, name)}")
    parser.add_argument("--learning_rate", type=float, help=f"default: {DemoSettings.learning_rate}")
    parser.add_argument(
        "--protocol",
        help=f"the training datasets, as `faceinsight train --dataset_name` takes them (default: {PROTOCOL})",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="a smoke run of the same code at tiny sizes (2 minutes)")
    size.add_argument("--full", action="store_true", help=f"the README's table: {FULL} (about 24 minutes)")
    add_overwrite(parser, "demo")
    return parser


def main(argv: list[str] | None = None) -> int:
    from faceinsight.folders import output_dir

    args = parser().parse_args(argv)
    if not sys.stderr.isatty():  # a log file, not a terminal: no progress bars (they made the demo's log 188 KB)
        os.environ["TQDM_DISABLE"] = "1"
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    overrides = {k: v for k, v in vars(args).items() if k in DemoSettings.__dataclass_fields__ and v is not None}
    settings = DemoSettings(**{**(QUICK if args.quick else FULL if args.full else {}), **overrides})
    with output_dir(settings.output_dir, "demo", overwrite=args.overwrite, patterns=DEMO_ENTRIES):
        run_demo(settings)
    return 0
