"""`faceinsight build OUT`: a Hub-ready FaceInsight folder, from the tiny preset (offline, random weights), from a
LLaVA checkpoint (tower, projector, LM and chat template carried over), or from pretrained parts (a vision tower and a
causal LM); optionally a SegFormer parser. Hub ids or local folders; weights load and are written in --dtype.

    faceinsight build outputs/tiny --preset tiny
    faceinsight build outputs/fi-7b --from-llava llava-hf/llava-1.5-7b-hf --dtype bfloat16
    faceinsight build outputs/fi --vision google/siglip-base-patch16-224 --text HuggingFaceTB/SmolLM2-135M-Instruct
"""

from __future__ import annotations

import argparse

from faceinsight.commands._common import add_overwrite


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight build", description=__doc__.split("\n\n")[0])
    parser.add_argument("output_dir", help="folder to write")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--preset",
        choices=["tiny", "tiny-llava"],
        help="a small random model built offline from "
        "configs (tiny-llava: a plain transformers LLaVA of the same sizes, a baseline)",
    )
    source.add_argument(
        "--from-llava",
        help="a LlavaForConditionalGeneration checkpoint (Hub id or folder, e.g. llava-hf/llava-1.5-7b-hf): its "
        "tower, projector, LM, tokenizer and chat template; the parsing branch starts as a copy of the image branch",
    )
    source.add_argument("--vision", help="pretrained vision tower: Hub id or local folder (SigLIP/CLIP/ViT)")
    parser.add_argument("--text", help="pretrained causal LM: Hub id or local folder (needed with --vision)")
    parser.add_argument("--text-gguf-file", help="GGUF file inside --text to load the LM from")
    parser.add_argument("--parser", help="pretrained SegFormer checkpoint for the face parser (optional)")
    parser.add_argument("--parsing-seq-length", type=int, help="parsing tokens per image (default: patches / 4)")
    parser.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16"],
        default="float32",
        help="dtype the weights are loaded, built and written in (bfloat16 for 7B models: about 2 bytes per weight)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed for the random weights")
    add_overwrite(parser, "build")
    return parser


def build_model(args):
    """(model, processor) as the flags ask."""
    import torch

    from faceinsight.folders import check_model_source
    from faceinsight.hub.assemble import DTYPES, build_from_llava, build_from_pretrained
    from faceinsight.hub.build import build_tiny, build_tiny_llava

    dtype = DTYPES[args.dtype]
    if args.preset:
        model, processor = (build_tiny_llava if args.preset == "tiny-llava" else build_tiny)(seed=args.seed)
        return model.to(dtype), processor
    if args.vision and not args.text:
        raise ValueError("--vision needs --text (the language model)")
    if args.from_llava and args.text:
        raise ValueError("--text goes with --vision; --from-llava brings its own language model")
    for flag in ("from_llava", "vision", "text", "parser"):
        if getattr(args, flag):
            check_model_source(getattr(args, flag), "--" + flag.replace("_", "-"))
    torch.manual_seed(args.seed)
    if args.from_llava:
        return build_from_llava(
            args.from_llava, parser=args.parser, parsing_seq_length=args.parsing_seq_length, dtype=dtype
        )
    return build_from_pretrained(
        args.vision,
        args.text,
        parser=args.parser,
        text_gguf_file=args.text_gguf_file,
        parsing_seq_length=args.parsing_seq_length,
        dtype=dtype,
    )


def main(argv: list[str] | None = None) -> int:
    from faceinsight.folders import output_dir
    from faceinsight.hub.export import save_model_folder

    args = parser().parse_args(argv)
    model, processor = build_model(args)
    with output_dir(args.output_dir, "build", overwrite=args.overwrite):
        if args.preset == "tiny-llava":  # a plain transformers model: its own save
            model.save_pretrained(args.output_dir)
            processor.save_pretrained(args.output_dir)
        else:
            save_model_folder(model, processor, args.output_dir)
    parameters = sum(p.numel() for p in model.parameters())
    print(f"wrote {args.output_dir} ({type(model).__name__}, {parameters:,} parameters)")
    return 0
