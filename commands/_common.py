"""Flags several commands share."""

from __future__ import annotations


def add_overwrite(parser, command: str):
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an earlier faceinsight {command} output in "
        "the output folder (only what it wrote); without it, a non-empty folder is refused",
    )


def trust_remote_code_flag(parser):
    parser.add_argument(
        "--trust_remote_code",
        action="store_true",
        help="run the model's own code (needed for a "
        "model that is not FaceInsight and ships code; a FaceInsight folder or repo needs none)",
    )
