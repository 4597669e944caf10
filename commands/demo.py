"""`faceinsight demo`: the whole pipeline on the embedded synthetic faces, offline, on a CPU.

Builds a small FaceInsight, trains its face parser, trains the model (knowledge modules + LoRA) and three ablations
with one shared recipe and seed (no parsing map, no CCM, no LCM), evaluates all of them on held-out faces with 95%
intervals, writes the Hub-ready folder with its model card, reloads it in a fresh process through
`AutoModel.from_pretrained(..., trust_remote_code=True)` and `pipeline("image-text-to-text")`, and prints a report.
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
    "no parsing map": ["--parsing_map_source", "blank"],
    "no CCM": ["--parsing_map_source", "parser", "--use_correlation_graph", "false"],
    "no LCM": ["--parsing_map_source", "parser", "--use_logic_rules", "false"],
}
# LoRA on every linear layer of the LM: the tiny LM starts random, and attention-only LoRA leaves most of its
# answers unreadable after 500 steps
LORA_FLAGS = ["--lora_target_modules", *"q_proj k_proj v_proj o_proj gate_proj up_proj down_proj".split()]
LORA_FLAGS += ["--lora_r", "16", "--lora_alpha", "32"]
QUESTIONS = [
    "What is the gender of this person? Options: male, female.",
    "Which facial expression does this person show? Options: surprise, fear, disgust, happiness, sadness, "
    "anger, neutral. Answer with one option.",
    "Does this person have the attribute 'eyeglasses'? Answer yes or no.",
]


@dataclass
class DemoSettings:
    output_dir: str = "outputs/demo"
    train_faces: int = 2000
    eval_faces: int = 1000
    parser_faces: int = 1000
    parser_steps: int = 1500
    steps: int = 500
    batch_size: int = 16
    learning_rate: float = 3e-3
    answer_faces: int = 40
    seed: int = 0


QUICK = dict(train_faces=48, eval_faces=40, parser_faces=24, parser_steps=4, steps=4, batch_size=8, answer_faces=2)


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


def train_variant(base: Path, output_dir: Path, flags: list[str], settings: DemoSettings):
    from faceinsight.commands.train import parse_arguments
    from faceinsight.training.train import run_training

    options = {
        "model_name_or_path": base,
        "output_dir": output_dir,
        "dataset_name": "synthetic",
        "stage": "stage2",
        "num_train_faces": settings.train_faces,
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
    return run_training(*parse_arguments([*argv, *LORA_FLAGS, *flags]))


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
        f"train the model and {len(VARIANTS) - 1} ablations ({settings.steps} steps each, one recipe, "
        f"seed {settings.seed})",
        "training",
    ):
        folders = {}
        for name, flags in VARIANTS.items():
            print(f"--- {name}", flush=True)
            folders[name] = out / "model" if name == "full" else out / "work" / "ablations" / name.replace(" ", "_")
            train_variant(base, folders[name], flags, settings)
    with steps(f"evaluate on {settings.eval_faces} held-out synthetic faces", "evaluation"):
        held_out, scores, loaded, rules = score_variants(folders, processor, settings)
    with steps(
        f"ask the trained model closed questions about {settings.answer_faces} faces (generated answers)", "answers"
    ):
        full_processor, answers = ask_closed_questions(loaded["full"], held_out, settings.answer_faces, out)
    with steps("write pictures and the model card", "pictures and card"):
        pictures = write_pictures(loaded["full"], full_processor, held_out, scores, out)
        write_model_card(loaded["full"].config, scores, answers, parser_report, settings, out / "model")
    with steps(
        "reload the folder in a fresh process (AutoModel + pipeline, trust_remote_code) and ask it",
        "fresh-process reload",
    ):
        reload = ask_fresh_process(out / "model", held_out[0], out / "example_face.png")
    with steps("report", "report"):
        from faceinsight.evaluation.report import task_table

        report = {
            "settings": asdict(settings),
            "parser": {k: parser_report[k] for k in ("mean_iou", "baseline_mean_iou", "per_class_iou")},
            "scores": scores,
            "rules_from_held_out_ground_truth": len(rules),
            "generated_answers": {
                "faces": settings.answer_faces,
                "questions": answers["questions"],
                "unreadable": answers["unreadable_answers"],
                "scores": answers["scores"]["generated"],
            },
            "description_scores": answers["description_scores"],
            "answer_diversity": answer_diversity(out / "generated_answers" / "answers.jsonl"),
            "fresh_process": {k: reload[k] for k in ("AutoModel", "answers", "truth", "faceinsight_imported")},
            "model_dir": str(out / "model"),
            "pictures": [str(p) for p in pictures],
            "seconds": steps.timings,
            "total_seconds": round(time.perf_counter() - steps.started, 1),
        }
        (out / "demo_report.json").write_text(json.dumps(report, indent=2) + "\n")
        print_report(report, task_table)
    return report


def ask_closed_questions(model, held_out, faces: int, out: Path):
    """The trained model's generated answers to closed questions about `faces` held-out faces, and its free-text
    descriptions of them (fact precision and recall), through the processor a user loads; returns (that processor,
    the evaluation's report)."""
    from transformers import AutoProcessor

    from faceinsight.evaluation.run import evaluate

    processor = AutoProcessor.from_pretrained(out / "model")
    records = held_out.select(range(faces))
    report = evaluate(
        model, processor, records, None, out / "generated_answers", "full", structured=False, descriptions=faces
    )
    return processor, report


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
    from faceinsight.evaluation.report import task_table
    from faceinsight.evaluation.structured import (
        majority_predictions,
        score_predictions,
        structured_predictions,
        targets_of,
    )
    from faceinsight.hub.build import TINY_IMAGE_SIZE
    from faceinsight.training.face_datasets import synthetic_faces
    from faceinsight.training.knowledge import held_out_rules

    held_out, _ = synthetic_faces(settings.eval_faces, settings.seed, TINY_IMAGE_SIZE, "test")
    train_records, _ = synthetic_faces(settings.train_faces, settings.seed, TINY_IMAGE_SIZE, "train")
    schema = FaceInsightForConditionalGeneration.config_class.from_pretrained(folders["full"])
    targets = targets_of(held_out, schema)
    rules = held_out_rules(targets.tolist(), schema)
    scores, loaded = {}, {}
    for name, folder in folders.items():
        loaded[name] = FaceInsightForConditionalGeneration.from_pretrained(folder, use_safetensors=True).eval()
        maps = "blank" if name == "no parsing map" else "parser"  # a user has no exact maps: the parser's
        decisions, _ = structured_predictions(loaded[name], processor, held_out, parsing_map_source=maps)
        scores[name] = score_predictions(decisions, targets, schema, rules)
    decisions, _ = structured_predictions(loaded["full"], processor, held_out, parsing_map_source="dataset")
    scores["full, exact maps"] = score_predictions(decisions, targets, schema, rules)
    majority = majority_predictions(targets_of(train_records, schema).tolist(), schema)
    scores["majority baseline"] = score_predictions(np.broadcast_to(majority, targets.shape), targets, schema, rules)
    print(task_table(scores))
    return held_out, scores, loaded, rules


def write_pictures(model, processor, held_out, scores: dict, out: Path) -> list[Path]:
    from faceinsight.evaluation.report import plot_attribute_accuracy, plot_confusion_matrix, plot_variants

    shown = {k: v for k, v in scores.items() if k != "full, exact maps"}
    full_and_majority = {k: scores[k] for k in ("full", "majority baseline")}
    expression = scores["full"]["tasks"]["expression"]
    return [
        parsing_sheet(model, processor, held_out, out / "parsing_maps.png"),
        plot_variants(shown, out / "results.png", "full model vs ablations (95% intervals)"),
        plot_attribute_accuracy(full_and_majority, out / "attribute_accuracy.png"),
        plot_confusion_matrix(expression, "full model: expression", out / "confusion_expression.png"),
    ]


def write_model_card(config, scores: dict, answers: dict, parser_report: dict, settings: DemoSettings, folder: Path):
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
        "scores": {"generated": answers["scores"]["generated"]},
    }
    training = (
        f"`faceinsight demo`: stage-2 recipe (LoRA r=16 on every linear layer of the LM, projectors and "
        f"knowledge modules trained in full, on the trained parser's maps), {settings.steps} steps of batch "
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


def print_report(report: dict, task_table) -> None:
    settings = report["settings"]
    print("\n" + "=" * 100)
    print(
        f"FaceInsight demo: {settings['eval_faces']} held-out synthetic faces, accuracy [95% interval]; "
        f"every variant trained with the same recipe and seed {settings['seed']}"
    )
    print(task_table(report["scores"]))
    print(
        "attributes: mean accuracy over the drawn CelebA attributes (face-level bootstrap interval); age, gender, "
        "race, expression: accuracy (Wilson interval). 'logic violations': share of faces whose predictions break "
        "a rule that holds in the held-out ground truth. Every variant is trained and scored with the maps its trained "
        "parser makes (blank for 'no parsing map'); 'full, exact maps' scores the full model with the generator's "
        "exact maps instead."
    )
    generated = report["generated_answers"]
    print(
        f"\ngenerated answers of the full model ({generated['faces']} faces, {generated['questions']} closed "
        f"questions, {generated['unreadable']} unreadable, counted wrong):"
    )
    print(task_table({"full (answers)": generated["scores"]}))
    print(f"descriptions by the full model ({generated['faces']} faces): fact precision / recall [95% intervals]")
    for task, score in report["description_scores"].items():
        precision, recall = score["precision"], score["recall"]
        shown = (
            f"{precision:.3f} {[round(v, 3) for v in score['precision_interval']]}" if precision is not None else "-"
        )
        recall = f"{recall:.3f}" if recall is not None else "-"
        print(f"  {task:<11} precision {shown} of {score['statements']} statements; recall {recall}")
    diversity = report["answer_diversity"]
    same = [label for label, count in diversity.items() if count == 1]
    facets = [label for label in ("age", "gender", "race", "expression") if label in diversity]
    varied = [label for label, count in diversity.items() if label not in facets and count > 1]
    attributes = len(diversity) - len(facets)
    print(
        f"different answers across the {generated['faces']} faces: "
        + ", ".join(f"{label} {diversity[label]}" for label in facets)
        + f"; {len(varied)} of {attributes} attribute questions got more than one answer"
    )
    if len(same) == len(diversity):
        print("every face got the same answers: the language model answers without reading the picture")
    elif same:
        print(
            f"the same answer for every face: {', '.join(label for label in same if label in facets) or 'no facet'}"
            f" and {len([label for label in same if label not in facets])} attribute questions"
        )
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


# what the demo writes into its folder: the only entries --overwrite replaces
DEMO_ENTRIES = ("model", "work", "generated_answers", "demo_report.json", "*.png")


def parser():
    import argparse

    from faceinsight.commands._common import add_overwrite

    parser = argparse.ArgumentParser(prog="faceinsight demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", help=f"default: {DemoSettings.output_dir}")
    for name in (
        "train_faces",
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
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run of the same code (tiny sizes)")
    add_overwrite(parser, "demo")
    return parser


def main(argv: list[str] | None = None) -> int:
    from faceinsight.outputs import output_dir

    args = parser().parse_args(argv)
    if not sys.stderr.isatty():  # a log file, not a terminal: no progress bars (they made the demo's log 188 KB)
        os.environ["TQDM_DISABLE"] = "1"
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
    overrides = {k: v for k, v in vars(args).items() if k in DemoSettings.__dataclass_fields__ and v is not None}
    settings = DemoSettings(**{**(QUICK if args.quick else {}), **overrides})
    with output_dir(settings.output_dir, "demo", overwrite=args.overwrite, patterns=DEMO_ENTRIES):
        run_demo(settings)
    return 0
