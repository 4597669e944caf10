"""`faceinsight eval --model MODEL --dataset NAME`: accuracy on the three face tasks, with 95% intervals, for
FaceInsight (generated answers and structured predictions) or any model `pipeline("image-text-to-text")` loads.

    faceinsight eval --model outputs/demo/model --dataset synthetic
    faceinsight eval --model llava-hf/llava-1.5-7b-hf --dataset rafdb --dataset_dir RAF-DB/basic
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

from faceinsight.commands._common import add_overwrite, trust_remote_code_flag


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight eval", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--model",
        required=True,
        help="a model folder or Hub id (FaceInsight or any image-text-to-text model, e.g. LLaVA, Qwen2-VL, SmolVLM)",
    )
    parser.add_argument(
        "--dataset",
        default="synthetic",
        help="synthetic, celeba, lfwa, fairface, utkface, rafdb, "
        "affectnet, celebamask_hq, maadface, or a folder saved with datasets' save_to_disk",
    )
    parser.add_argument("--dataset_dir", help="the dataset's root in its original layout")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="evaluate the first N faces of the split")
    parser.add_argument("--num_faces", type=int, default=1000, help="synthetic: held-out faces")
    parser.add_argument("--seed", type=int, default=0, help="synthetic: the face stream")
    parser.add_argument("--output_dir", help="default: eval_MODEL_DATASET")
    add_scoring_flags(parser)
    trust_remote_code_flag(parser)
    parser.add_argument(
        "--on_error",
        choices=["raise", "skip"],
        default="raise",
        help="a bad row or image: stop naming it (raise), or skip it and count it in the report (skip)",
    )
    parser.add_argument(
        "--no_verify_images",
        action="store_true",
        help="do not decode every image up front (faster; a corrupt file then fails mid-run)",
    )
    add_overwrite(parser, "eval")
    return parser


def add_scoring_flags(parser) -> None:
    """What is asked and scored: generated answers, descriptions, structured predictions and their maps."""
    parser.add_argument(
        "--attribute_questions",
        type=int,
        help="yes/no questions per face (default: every attribute the dataset labels)",
    )
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=16)
    parser.add_argument("--no_generated", action="store_true", help="skip the generated answers")
    parser.add_argument(
        "--descriptions",
        type=int,
        default=0,
        help="ask the first N faces for a free-text description and score its facts (precision, recall)",
    )
    parser.add_argument(
        "--structured",
        choices=["auto", "yes", "no"],
        default="auto",
        help="FaceInsight's structured predictions too (auto: when the model has them)",
    )
    parser.add_argument(
        "--parsing_map_source",
        choices=["parser", "dataset", "blank"],
        help="maps for the structured predictions: the model's parser (what a user gets), the dataset's, or blank "
        "(default: dataset with --parsing_maps_dir, else parser)",
    )
    parser.add_argument(
        "--parsing_maps_dir",
        help="maps written once by `faceinsight parse` over the dataset's images (read as the dataset's maps)",
    )
    parser.add_argument("--parsing_maps", choices=["parser", "dataset", "blank"], help=argparse.SUPPRESS)  # earlier


def run(args, output_dir: str) -> dict:
    from faceinsight.evaluation.run import evaluate, image_size_of, load_model, load_split
    from faceinsight.folders import check_model_source

    check_model_source(args.model, "--model")
    model, processor = load_model(args.model, args.trust_remote_code)
    records, train, data = load_split(
        args.dataset,
        args.split,
        args.dataset_dir,
        args.limit,
        args.num_faces,
        args.seed,
        image_size_of(processor),
        args.on_error,
        not args.no_verify_images,
        args.parsing_maps_dir,
    )
    structured = {"auto": None, "yes": True, "no": False}[args.structured]
    return evaluate(
        model,
        processor,
        records,
        train,
        output_dir,
        Path(args.model.rstrip("/")).name,
        attribute_questions=args.attribute_questions,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        generated=not args.no_generated,
        structured=structured,
        parsing_map_source=args.parsing_map_source,
        data=data,
        descriptions=args.descriptions,
    )


def main(argv: list[str] | None = None) -> int:
    from faceinsight.evaluation.report import paired_table, task_table
    from faceinsight.folders import output_dir as guarded

    args = parser().parse_args(argv)
    if args.parsing_maps:
        warnings.warn("--parsing_maps is deprecated; use --parsing_map_source", FutureWarning, stacklevel=1)
        args.parsing_map_source = args.parsing_maps
    if args.parsing_map_source is None:
        args.parsing_map_source = "dataset" if args.parsing_maps_dir else "parser"
    output_dir = args.output_dir or f"eval_{Path(args.model.rstrip('/')).name}_{Path(args.dataset).name}"
    with guarded(output_dir, "eval", overwrite=args.overwrite):
        report = run(args, output_dir)
    print(
        f"{report['model']} ({report['model_class']}) on {report['faces']} {args.dataset} {args.split} faces; "
        f"{len(report['rules'])} rules from the split's ground truth"
    )
    if report["data"].get("skipped"):
        print(f"skipped while reading {args.dataset}: {report['data']['skipped']} (--on_error skip)")
    if "questions" in report:
        print(f"{report['questions']} questions, {report['unreadable_answers']} answers unreadable (counted wrong)")
    print(task_table(report["scores"]))
    if "generated_vs_structured" in report:
        print("generated answers less structured decisions, same questions [paired 95% interval], share answered alike")
        print(paired_table({report["model"]: report["generated_vs_structured"]}))
    if "description_scores" in report:
        print(f"descriptions of {report['described_faces']} faces: fact precision / recall [95% intervals]")
        for task, score in report["description_scores"].items():
            precision, recall = score["precision"], score["recall"]
            print(
                f"  {task:<11} precision "
                + (f"{precision:.3f} {score['precision_interval']}" if precision is not None else "- (nothing stated)")
                + f" of {score['statements']} statements; recall "
                + (f"{recall:.3f}" if recall is not None else "-")
                + f" of {score['known']} known facts"
            )
    print(f"wrote {output_dir}/eval_report.json and {len(report['pictures'])} pictures")
    return 0
