"""`faceinsight train-parser`: train the SegFormer face parser on image / label-map pairs (CelebAMask-HQ, or a
folder of images with the maps `faceinsight parse` wrote), report held-out IoU per class against a constant
baseline, and save it into a FaceInsight folder (or as a parser folder of its own).

    faceinsight train-parser --celebamask CelebAMask-HQ/ --model_name_or_path outputs/fi --output_dir outputs/fi2
"""

from __future__ import annotations

import argparse

from faceinsight.commands._common import add_overwrite


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight train-parser", description=__doc__.split("\n\n")[0])
    parser.add_argument("--output_dir", required=True, help="where the trained parser (or FaceInsight folder) goes")
    data = parser.add_mutually_exclusive_group(required=True)
    data.add_argument("--celebamask", help="a CelebAMask-HQ root (CelebA-HQ-img/ + CelebAMask-HQ-mask-anno/)")
    data.add_argument("--images", help="a folder of images (with --maps)")
    parser.add_argument("--maps", help="label maps for --images: NAME_labels.png (faceinsight parse) or NAME.png")
    parser.add_argument(
        "--model_name_or_path",
        help="a FaceInsight folder (its parser is trained and saved back "
        "into a copy at --output_dir) or a SegFormer checkpoint to start from",
    )
    parser.add_argument("--parser_preset", choices=["tiny", "b0"], default="tiny", help="architecture from scratch")
    parser.add_argument("--image_size", type=int, help="training resolution (default: the model's, else 128)")
    parser.add_argument("--eval_fraction", type=float, default=0.2, help="held-out share of the pairs")
    parser.add_argument("--max_steps", type=int, default=300)
    parser.add_argument("--per_device_train_batch_size", type=int, default=8)
    parser.add_argument("--learning_rate", type=float, default=1e-3)
    parser.add_argument("--save_steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume_from_checkpoint", help="a checkpoint folder, or 'true' for the latest")
    add_overwrite(parser, "train-parser")
    return parser


def main(argv: list[str] | None = None) -> int:
    from faceinsight.folders import output_dir
    from faceinsight.parsing.train import pairs_from_celebamask, pairs_from_folders, train_parser

    args = parser().parse_args(argv)
    if args.images and not args.maps:
        raise ValueError("--images needs --maps (the folder of label maps)")
    skipped = {}
    pairs = pairs_from_celebamask(args.celebamask) if args.celebamask else None
    if pairs is None:
        pairs, skipped = pairs_from_folders(args.images, args.maps)
    resume = {"true": True, None: None}.get(args.resume_from_checkpoint, args.resume_from_checkpoint)
    with output_dir(args.output_dir, "train-parser", overwrite=args.overwrite, reuse=resume is not None):
        report = train_parser(
            args.output_dir,
            pairs,
            model_name_or_path=args.model_name_or_path,
            parser_preset=args.parser_preset,
            image_size=args.image_size,
            eval_fraction=args.eval_fraction,
            max_steps=args.max_steps,
            per_device_train_batch_size=args.per_device_train_batch_size,
            learning_rate=args.learning_rate,
            save_steps=args.save_steps,
            seed=args.seed,
            resume_from_checkpoint=resume,
            skipped=skipped,
        )
    print(
        f"held-out mean IoU {report['mean_iou']:.3f} vs constant '{report['baseline_class']}' baseline "
        f"{report['baseline_mean_iou']:.3f} ({report['held_out_pairs']} held-out pairs)"
    )
    for name, iou in report["per_class_iou"].items():
        print(f"  {name:>10}: {iou:.3f}")
    print(f"wrote {args.output_dir} (parser_report.json, parser_examples.png)")
    return 0
