"""`faceinsight merge ADAPTER --output_dir OUT`: a LoRA adapter folded into its base, written as a full Hub-ready
folder (the adapter's knowledge, when it carries its own, applied first).

    faceinsight merge outputs/run/adapter --output_dir outputs/merged
"""

from __future__ import annotations

import argparse

from faceinsight.commands._common import add_overwrite


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight merge", description=__doc__.split("\n\n")[0])
    parser.add_argument("adapter_dir", help="an adapter folder (faceinsight train --save_adapter true)")
    parser.add_argument("--output_dir", required=True)
    parser.add_argument("--base", help="the base model (default: the one the adapter names)")
    add_overwrite(parser, "merge")
    return parser


def main(argv: list[str] | None = None) -> int:
    from faceinsight.folders import check_model_source, output_dir
    from faceinsight.hub.adapters import merge_adapter

    args = parser().parse_args(argv)
    check_model_source(args.adapter_dir, "adapter_dir")
    if args.base:
        check_model_source(args.base, "--base")
    with output_dir(args.output_dir, "merge", overwrite=args.overwrite):
        merge_adapter(args.adapter_dir, args.output_dir, args.base)
    print(f"wrote {args.output_dir} (adapter merged into its base)")
    return 0
