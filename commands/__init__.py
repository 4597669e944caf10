"""The `faceinsight` command line: one module per command, each a `main(argv)` over library calls.

    faceinsight demo | build | ask | parse | train | train-parser | eval | push | merge  [--help]

Every failure is one line naming its cause and exit status 2; `--debug` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import sys

# command -> (module, one-line help); each module has `main(argv) -> int` and builds its own parser
COMMANDS = {
    "demo": ("demo", "the whole pipeline on synthetic faces, offline, CPU (about 10 minutes)"),
    "build": ("build", "write a Hub-ready FaceInsight model folder"),
    "ask": ("ask", "answer a question about a face image"),
    "parse": ("parse", "face-parsing label maps, overlays and statistics for images"),
    "train": ("train", "fine-tune with TRL's SFTTrainer on the whole objective (faceinsight train --help)"),
    "train-parser": ("train_parser", "train the SegFormer face parser on image/label-map pairs"),
    "eval": ("eval", "accuracy on the three face tasks for any image-text-to-text model"),
    "push": ("push", "publish a model or LoRA adapter folder to the Hugging Face Hub"),
    "merge": ("merge", "merge a LoRA adapter folder into a full Hub-ready folder"),
}


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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    command = next((arg for arg in argv if not arg.startswith("-")), "")
    parser = argparse.ArgumentParser(prog="faceinsight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        subparsers.add_parser(name, help=help_text, add_help=False)  # the command's own parser shows its --help
    try:  # a subparser per command routes the rest of argv to that command's `main`, which parses it
        args, rest = parser.parse_known_args(argv)
        return importlib.import_module(f"faceinsight.commands.{COMMANDS[args.command][0]}").main(rest)
    except SystemExit as exit:  # argparse: --help (0), or a usage error it has printed (2)
        return exit.code if isinstance(exit.code, int) else 2
    except KeyboardInterrupt:
        print(f"faceinsight {command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the one error path of the command line
        if debug:
            raise
        print(f"faceinsight {command}: error: {describe_error(error)}", file=sys.stderr)
        return 2
