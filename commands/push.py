"""`faceinsight push FOLDER --repo-id ORG/NAME`: publish a model or LoRA adapter folder to the Hub in one commit;
`--dry-run` checks exactly what would be uploaded, without network (see hub/validate.py).

    faceinsight push outputs/demo/model --repo-id ORG/NAME --dry-run
    faceinsight push outputs/demo/model --repo-id ORG/NAME --private
"""

from __future__ import annotations

import argparse
from pathlib import Path


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="faceinsight push", description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir", help="a folder from faceinsight build/train/demo (or an adapter folder)")
    parser.add_argument("--repo-id", required=True, help="ORG/NAME on the Hub")
    parser.add_argument("--private", action="store_true", help="create the repository private")
    parser.add_argument("--revision", help="a branch to push to (created if needed)")
    parser.add_argument("--token", help="a Hub token (default: HF_TOKEN or the stored login)")
    parser.add_argument("--commit-message")
    parser.add_argument("--dry-run", action="store_true", help="validate only, without network; upload nothing")
    parser.add_argument(
        "--base-dir", help="dry run of an adapter: a local copy of the base it names by repo id, to load it on"
    )
    return parser


def describe(plan) -> list[str]:
    """What the plan sends, leaves out and changes, one line each."""
    lines = [f"uploads {len(plan.files)} files: {', '.join(sorted(plan.files))}"]
    lines += [f"leaves out {name}: {reason}" for name, reason in plan.left_out.items()]
    return lines + plan.notes


def main(argv: list[str] | None = None) -> int:
    from faceinsight.hub.push import push_folder
    from faceinsight.hub.validate import validate_folder

    args = parser().parse_args(argv)
    if not Path(args.model_dir).is_dir():
        raise FileNotFoundError(f"{args.model_dir}: no such folder")
    if args.dry_run:
        problems, report, plan = validate_folder(args.model_dir, args.repo_id, base_dir=args.base_dir)
        for line in describe(plan) if plan is not None else []:
            print(f"  {line}")
        if problems:
            print(f"faceinsight push --dry-run: {args.model_dir} is NOT ready for {args.repo_id}:")
            for problem in problems:
                print(f"  - {problem}")
            return 1
        kind = "adapter on " + report["adapter_base"] if "adapter_base" in report else report["AutoModel"]
        print(
            f"dry run: {args.model_dir} is ready for {args.repo_id} ({kind}; files, safetensors, code, card and a "
            "fresh-process load of exactly these files checked); nothing was uploaded"
        )
        return 0
    commit, plan = push_folder(
        args.model_dir,
        args.repo_id,
        private=args.private,
        revision=args.revision,
        token=args.token,
        commit_message=args.commit_message,
    )
    for line in describe(plan):
        print(f"  {line}")
    print(f"pushed {args.model_dir} to {args.repo_id}: commit {commit.oid} ({commit.commit_url})")
    return 0
