"""`faceinsight parse IMAGE_OR_DIR... --output DIR`: per image, a label map (palette PNG), an overlay and
statistics; unreadable images are named, skipped and counted (exit status 1 when any failed).

    faceinsight parse photos/ --output maps/
    faceinsight parse photos/ --output maps/ --backend model --model outputs/demo/model
"""

from __future__ import annotations

import argparse

from faceinsight.commands._common import add_overwrite


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight parse", description=__doc__.split("\n\n")[0])
    parser.add_argument("images", nargs="+", help="image files or directories (walked recursively)")
    parser.add_argument("--output", required=True, help="folder for NAME_labels.png, NAME_overlay.png, NAME.json")
    parser.add_argument(
        "--backend",
        choices=["mediapipe", "model"],
        help="default: model with --model, else mediapipe (the mediapipe extra)",
    )
    parser.add_argument("--model", help="with --backend model: a FaceInsight folder or a parser folder")
    add_overwrite(parser, "parse")
    return parser


def main(argv: list[str] | None = None) -> int:
    from faceinsight.folders import output_dir
    from faceinsight.parsing.run import parse_images

    args = parser().parse_args(argv)
    with output_dir(args.output, "parse", overwrite=args.overwrite):
        written, failed = parse_images(args.images, args.output, backend=args.backend, model_dir=args.model)
    print(f"parsed {len(written)} image(s) into {args.output}" + (f"; {len(failed)} failed" if failed else ""))
    return 1 if failed else 0
