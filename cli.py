"""The `faceinsight` command: `build` writes a Hub-ready model folder, `ask` answers a question about a face."""

from __future__ import annotations

import argparse
import errno
import json
import sys


def _add_overwrite(parser, command: str):
    parser.add_argument("--overwrite", action="store_true", help=f"replace an earlier faceinsight {command} output in "
                        "the output folder (only what it wrote); without it, a non-empty folder is refused")


def _add_build(subparsers):
    parser = subparsers.add_parser("build", help="write a Hub-ready FaceInsight model folder")
    parser.add_argument("output_dir", help="folder to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=["tiny", "tiny-llava"], help="a small random model built offline from "
                        "configs (tiny-llava: a plain transformers LLaVA of the same sizes, a baseline)")
    source.add_argument("--vision", help="pretrained vision tower: Hub id or local folder (SigLIP/CLIP/ViT)")
    parser.add_argument("--text", help="pretrained causal LM: Hub id or local folder (needed with --vision)")
    parser.add_argument("--text-gguf-file", help="GGUF file inside --text to load the LM from")
    parser.add_argument("--parser", help="pretrained SegFormer checkpoint for the face parser (optional)")
    parser.add_argument("--parsing-seq-length", type=int, help="parsing tokens per image (default: patches / 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights")
    _add_overwrite(parser, "build")
    parser.set_defaults(func=run_build)


def _add_ask(subparsers):
    parser = subparsers.add_parser("ask", help="answer a question about a face image")
    parser.add_argument("model_dir", help="a FaceInsight model folder or Hub id")
    parser.add_argument("image", help="path to an image")
    parser.add_argument("question", nargs="?", default="Describe this face.", help="the question")
    parser.add_argument("--parsing-map", help="a label-map image (0..18 per pixel) to use instead of the parser")
    parser.add_argument("--attributes", action="store_true", help="print the structured predictions as JSON")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--trust_remote_code", action="store_true", help="run the model's own code (needed for a "
                        "model that is not FaceInsight and ships code; a FaceInsight folder or repo needs none)")
    parser.set_defaults(func=run_ask)


def _add_eval(subparsers):
    parser = subparsers.add_parser("eval", help="accuracy on the three face tasks for any image-text-to-text model")
    parser.add_argument("--model", required=True, help="a model folder or Hub id (FaceInsight or any "
                        "image-text-to-text model, e.g. LLaVA, Qwen2-VL, SmolVLM)")  # fmt: skip
    parser.add_argument("--dataset", default="synthetic", help="synthetic, celeba, lfwa, fairface, utkface, rafdb, "
                        "affectnet, celebamask_hq, or a folder saved with datasets' save_to_disk")  # fmt: skip
    parser.add_argument("--dataset_dir", help="the dataset's root in its original layout")
    parser.add_argument("--split", default="test")
    parser.add_argument("--limit", type=int, help="evaluate the first N faces of the split")
    parser.add_argument("--num_faces", type=int, default=1000, help="synthetic: held-out faces")
    parser.add_argument("--seed", type=int, default=0, help="synthetic: the face stream")
    parser.add_argument("--output_dir", help="default: eval_MODEL_DATASET")
    parser.add_argument("--attribute_questions", type=int, help="yes/no questions per face (default: every "
                        "attribute the dataset labels)")  # fmt: skip
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--max_new_tokens", type=int, default=16)
    parser.add_argument("--no_generated", action="store_true", help="skip the generated answers")
    parser.add_argument("--structured", choices=["auto", "yes", "no"], default="auto",
                        help="FaceInsight's structured predictions too (auto: when the model has them)")  # fmt: skip
    parser.add_argument("--parsing_maps", choices=["parser", "dataset", "blank"], default="parser",
                        help="maps for the structured predictions: the model's parser (what a user gets), the "
                        "dataset's, or blank")  # fmt: skip
    parser.add_argument("--trust_remote_code", action="store_true", help="run the model's own code (needed for a "
                        "model that is not FaceInsight and ships code; a FaceInsight folder or repo needs none)")
    parser.add_argument("--on_error", choices=["raise", "skip"], default="raise", help="a bad row or image: stop "
                        "naming it (raise), or skip it and count it in the report (skip)")
    parser.add_argument("--no_verify_images", action="store_true", help="do not decode every image up front (faster; "
                        "a corrupt file then fails mid-run)")
    _add_overwrite(parser, "eval")
    parser.set_defaults(func=run_eval)


def _add_push(subparsers):
    parser = subparsers.add_parser("push", help="publish a model or LoRA adapter folder to the Hugging Face Hub")
    parser.add_argument("model_dir", help="a folder from faceinsight build/train/demo (or an adapter folder)")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="a branch to push to (created if needed)")
    parser.add_argument("--token", help="a Hub token (default: HF_TOKEN or the stored login)")
    parser.add_argument("--commit-message")
    parser.add_argument("--dry-run", action="store_true", help="validate only, without network; upload nothing")
    parser.add_argument("--base-dir", help="dry run of an adapter: a local copy of the base it names by repo id, "
                        "to load it on")
    parser.set_defaults(func=run_push)


def _add_demo(subparsers):
    from faceinsight.demo import DemoSettings

    parser = subparsers.add_parser("demo", help="the whole pipeline on synthetic faces, offline, CPU (~10 min)")
    parser.add_argument("--output_dir", help=f"default: {DemoSettings.output_dir}")
    for name in ("train_faces", "eval_faces", "parser_faces", "parser_steps", "steps", "batch_size", "answer_faces",
                 "seed"):  # fmt: skip
        parser.add_argument(f"--{name}", type=int, help=f"default: {getattr(DemoSettings, name)}")
    parser.add_argument("--learning_rate", type=float, help=f"default: {DemoSettings.learning_rate}")
    parser.add_argument("--quick", action="store_true", help="a seconds-long smoke run of the same code (tiny sizes)")
    _add_overwrite(parser, "demo")
    parser.set_defaults(func=run_demo)


def run_demo(args) -> int:
    from faceinsight.demo import main as demo_main

    return demo_main(args)


def _add_merge(subparsers):
    parser = subparsers.add_parser("merge", help="merge a LoRA adapter folder into a full Hub-ready folder")
    parser.add_argument("adapter_dir", help="an adapter folder (faceinsight train --save_adapter true)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--base", help="the base model (default: the one the adapter names)")
    _add_overwrite(parser, "merge")
    parser.set_defaults(func=run_merge)


def run_merge(args) -> int:
    from faceinsight.hub.adapters import merge_adapter
    from faceinsight.hub.sources import check_model_source
    from faceinsight.outputs import output_dir

    check_model_source(args.adapter_dir, "adapter_dir")
    if args.base:
        check_model_source(args.base, "--base")
    with output_dir(args.output_dir, "merge", overwrite=args.overwrite):
        print(f"wrote {merge_adapter(args.adapter_dir, args.output_dir, args.base)} (adapter merged into its base)")
    return 0


def run_push(args) -> int:
    from faceinsight.hub.push import main as push_main

    return push_main(args)


def run_eval(args) -> int:
    from faceinsight.evaluation.run import main as eval_main

    return eval_main(args)


def _add_parse(subparsers):
    parser = subparsers.add_parser("parse", help="face-parsing label maps, overlays and statistics for images")
    parser.add_argument("images", nargs="+", help="image files or directories (walked recursively)")
    parser.add_argument("--output", required=True, help="folder for NAME_labels.png, NAME_overlay.png, NAME.json")
    parser.add_argument("--backend", choices=["mediapipe", "model"], help="default: model with --model, else "
                        "mediapipe (the mediapipe extra)")
    parser.add_argument("--model", help="with --backend model: a FaceInsight folder or a parser folder")
    _add_overwrite(parser, "parse")
    parser.set_defaults(func=run_parse)


def run_parse(args) -> int:
    from faceinsight.outputs import output_dir
    from faceinsight.parsing.run import parse_images

    with output_dir(args.output, "parse", overwrite=args.overwrite):
        written, failed = parse_images(args.images, args.output, backend=args.backend, model_dir=args.model)
    print(f"parsed {len(written)} image(s) into {args.output}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0


def _add_train_parser(subparsers):
    parser = subparsers.add_parser("train-parser", help="train the SegFormer face parser on image/label-map pairs")
    parser.add_argument("--output_dir", required=True, help="where the trained parser (or FaceInsight folder) goes")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--celebamask", help="a CelebAMask-HQ root (CelebA-HQ-img/ + CelebAMask-HQ-mask-anno/)")
    data.add_argument("--images", help="a folder of images (with --maps)")
    parser.add_argument("--maps", help="label maps for --images: NAME_labels.png (faceinsight parse) or NAME.png")
    parser.add_argument("--model_name_or_path", help="a FaceInsight folder (its parser is trained and saved back "
                        "into a copy at --output_dir) or a SegFormer checkpoint to start from")  # fmt: skip
    parser.add_argument("--parser_preset", choices=["tiny", "b0"], default="tiny", help="architecture from scratch")
    parser.add_argument("--image_size", type=int, help="training resolution (default: the model's, else 128)")
    parser.add_argument("--eval_fraction", type=float, default=0.2, help="held-out share of the pairs")
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--per_device_train_batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--save_steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'true' for the latest")
    _add_overwrite(parser, "train-parser")
    parser.set_defaults(func=run_train_parser)


def run_train_parser(args) -> int:
    from faceinsight.outputs import output_dir
    from faceinsight.parsing.train import pairs_from_celebamask, pairs_from_folders, train_parser

    if args.images and not args.maps:
        raise ValueError("--images needs --maps (the folder of label maps)")
    skipped = {}
    pairs = pairs_from_celebamask(args.celebamask) if args.celebamask else None
    if pairs is None:
        pairs, skipped = pairs_from_folders(args.images, args.maps)
    resume = {"true": True, None: None}.get(args.resume_from_checkpoint, args.resume_from_checkpoint)
    with output_dir(args.output_dir, "train-parser", overwrite=args.overwrite, reuse=resume is not None):
        report = train_parser(
        args.output_dir, pairs, model_name_or_path=args.model_name_or_path, parser_preset=args.parser_preset,
            image_size=args.image_size, eval_fraction=args.eval_fraction, max_steps=args.max_steps,
            per_device_train_batch_size=args.per_device_train_batch_size, learning_rate=args.learning_rate,
            save_steps=args.save_steps, seed=args.seed, resume_from_checkpoint=resume, skipped=skipped,
        )  # fmt: skip
    print(f"held-out mean IoU {report['mean_iou']:.3f} vs constant '{report['baseline_class']}' baseline "
          f"{report['baseline_mean_iou']:.3f} ({report['held_out_pairs']} held-out pairs)")  # fmt: skip
    for name, iou in report["per_class_iou"].items():
        print(f"  {name:>10}: {iou:.3f}")
    print(f"wrote {args.output_dir} (parser_report.json, parser_examples.png)")
    return 0


def run_build(args) -> int:
    from faceinsight.hub.build import build_from_pretrained, build_tiny
    from faceinsight.hub.export import save_model_folder
    from faceinsight.outputs import output_dir

    if args.preset == "tiny-llava":
        from faceinsight.hub.build import build_tiny_llava

        model, processor = build_tiny_llava(seed=args.seed)
        with output_dir(args.output_dir, "build", overwrite=args.overwrite):
            model.save_pretrained(args.output_dir)
            processor.save_pretrained(args.output_dir)
        print(f"wrote {args.output_dir} (LlavaForConditionalGeneration, {sum(p.numel() for p in model.parameters()):,} "
              "parameters)")
        return 0
    if args.preset == "tiny":
        model, processor = build_tiny(seed=args.seed)
    else:
        if not args.text:
            raise ValueError("--vision needs --text (the language model)")
        from faceinsight.hub.sources import check_model_source

        for flag in ("vision", "text", "parser"):
            if getattr(args, flag):
                check_model_source(getattr(args, flag), f"--{flag}")
        import torch

        torch.manual_seed(args.seed)
        model, processor = build_from_pretrained(
            args.vision,
            args.text,
            parser=args.parser,
            text_gguf_file=args.text_gguf_file,
            parsing_seq_length=args.parsing_seq_length,
        )
    with output_dir(args.output_dir, "build", overwrite=args.overwrite):
        folder = save_model_folder(model, processor, args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"wrote {folder} ({parameters:,} parameters, {trainable:,} trainable)")
    return 0


def run_ask(args) -> int:
    from faceinsight.hub.sources import check_model_source
    from faceinsight.inference import FaceInsightAssistant
    from faceinsight.processing.image_processing_faceinsight import open_image

    check_model_source(args.model_dir, "model")
    open_image(args.image)  # a bad image is named before the model loads
    assistant = FaceInsightAssistant.from_pretrained(args.model_dir, trust_remote_code=args.trust_remote_code)
    answer = assistant.ask(args.image, args.question, parsing_map=args.parsing_map, max_new_tokens=args.max_new_tokens)
    if not args.attributes:
        print(answer)
        return 0
    structured = assistant.attributes(args.image, parsing_map=args.parsing_map)
    print(json.dumps({"question": args.question, "answer": answer, **structured}, indent=2))  # one JSON document
    return 0


def describe_error(error: BaseException) -> str:
    """One line that names the cause: the message (its first line), with the error's kind where the message alone
    would not say it."""
    while type(error).__name__.startswith("StrictDataclass") and error.__cause__ is not None:
        error = error.__cause__  # a config's validation hook: its own message, not the wrapper's
    if isinstance(error, OSError) and error.errno == errno.ENOSPC:
        return f"the disk is full{f' (writing {error.filename})' if error.filename else ''}; free space and run again"
    if isinstance(error, PermissionError):
        return f"permission denied: {error.filename or error}"
    lines = [line.strip() for line in str(error).strip().splitlines() if line.strip()]
    message = lines[0] if lines else "(no message)"
    if isinstance(error, (ValueError, FileNotFoundError, FileExistsError, KeyError)):
        return message
    return f"{type(error).__name__}: {message}"


def _run(argv: list[str]) -> int:
    if argv[:1] == ["train"]:  # every SFTConfig flag and --config YAML: TRL's parser takes over
        from faceinsight.training.train import main as train_main

        return train_main(argv[1:])
    parser = argparse.ArgumentParser(prog="faceinsight", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_build(subparsers)
    _add_ask(subparsers)
    _add_parse(subparsers)
    _add_train_parser(subparsers)
    _add_eval(subparsers)
    _add_push(subparsers)
    _add_merge(subparsers)
    _add_demo(subparsers)
    subparsers.add_parser("train", help="fine-tune with TRL SFT (flags: faceinsight train --help)", add_help=False)
    args = parser.parse_args(argv)
    return args.func(args)


def main(argv: list[str] | None = None) -> int:
    """Every failure is one line naming its cause and exit status 2 (`--debug` shows the traceback instead)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print(f"faceinsight {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one error path of the command line
        if debug:
            raise
        print(f"faceinsight {command}: error: {describe_error(error)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
