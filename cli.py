"""The `faceinsight` command: `build` writes a Hub-ready model folder, `ask` answers a question about a face."""

from __future__ import annotations

import argparse
import json
import sys


def _add_build(subparsers):
    parser = subparsers.add_parser("build", help="write a Hub-ready FaceInsight model folder")
    parser.add_argument("output_dir", help="folder to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--preset", choices=["tiny"], help="a small random model built offline from configs")
    source.add_argument("--vision", help="pretrained vision tower: Hub id or local folder (SigLIP/CLIP/ViT)")
    parser.add_argument("--text", help="pretrained causal LM: Hub id or local folder (needed with --vision)")
    parser.add_argument("--text-gguf-file", help="GGUF file inside --text to load the LM from")
    parser.add_argument("--parser", help="pretrained SegFormer checkpoint for the face parser (optional)")
    parser.add_argument("--parsing-seq-length", type=int, help="parsing tokens per image (default: patches / 4)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights")
    parser.set_defaults(func=run_build)


def _add_ask(subparsers):
    parser = subparsers.add_parser("ask", help="answer a question about a face image")
    parser.add_argument("model_dir", help="a FaceInsight model folder or Hub id")
    parser.add_argument("image", help="path to an image")
    parser.add_argument("question", nargs="?", default="Describe this face.", help="the question")
    parser.add_argument("--parsing-map", help="a label-map image (0..18 per pixel) to use instead of the parser")
    parser.add_argument("--attributes", action="store_true", help="print the structured predictions as JSON")
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.set_defaults(func=run_ask)


def run_build(args) -> int:
    from faceinsight.hub.build import build_from_pretrained, build_tiny
    from faceinsight.hub.export import save_model_folder

    if args.preset == "tiny":
        model, processor = build_tiny(seed=args.seed)
    else:
        if not args.text:
            raise SystemExit("faceinsight build: --vision needs --text (the language model)")
        import torch

        torch.manual_seed(args.seed)
        model, processor = build_from_pretrained(
            args.vision,
            args.text,
            parser=args.parser,
            text_gguf_file=args.text_gguf_file,
            parsing_seq_length=args.parsing_seq_length,
        )
    folder = save_model_folder(model, processor, args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"wrote {folder} ({parameters:,} parameters, {trainable:,} trainable)")
    return 0


def run_ask(args) -> int:
    from faceinsight.inference import FaceInsightAssistant

    assistant = FaceInsightAssistant.from_pretrained(args.model_dir)
    answer = assistant.ask(args.image, args.question, parsing_map=args.parsing_map, max_new_tokens=args.max_new_tokens)
    print(answer)
    if args.attributes:
        print(json.dumps(assistant.attributes(args.image, parsing_map=args.parsing_map), indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faceinsight", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    _add_build(subparsers)
    _add_ask(subparsers)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, TypeError) as error:
        print(f"faceinsight {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
