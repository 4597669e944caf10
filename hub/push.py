"""`faceinsight push`: publish a model (or LoRA adapter) folder to the Hugging Face Hub with huggingface_hub.

The dry run and the upload use one plan (`hub.validate.plan_upload`): the allow-listed files of the folder, nothing
else. `--dry-run` checks it without network (files, safetensors only, code identical to this package's, filled card,
loads in a fresh process) and uploads nothing. A real push checks the files and the code first, then creates the
repository (if needed), the branch for `--revision` (if needed), and uploads the plan in one commit.
"""

from __future__ import annotations

from pathlib import Path

from faceinsight.hub.validate import UploadPlan, code_problems, plan_problems, plan_upload, validate_folder


def push_folder(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
                token: str | None = None, commit_message: str | None = None, endpoint: str | None = None):  # fmt: skip
    """Upload the plan of `folder` to `repo_id`; returns huggingface_hub's CommitInfo (commit id and URL)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    plan = plan_upload(folder, repo_id)
    problems = [p for p in plan_problems(plan) + code_problems(folder) if "missing" in p or "pickled" in p
                or "differs" in p]  # fmt: skip
    if problems:
        raise ValueError(f"{folder} is not ready to publish: " + "; ".join(problems))
    api = HfApi(token=token, endpoint=endpoint)
    api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=source if isinstance(source, bytes)
                                     else str(source)) for name, source in plan.files.items()]  # fmt: skip
    return api.create_commit(
        repo_id=repo_id, repo_type="model", revision=revision, operations=operations,
        commit_message=commit_message or f"Upload {Path(folder).name} with faceinsight push",
    ), plan  # fmt: skip


def describe(plan: UploadPlan) -> list[str]:
    """What the plan sends, leaves out and changes, one line each."""
    lines = [f"uploads {len(plan.files)} files: {', '.join(sorted(plan.files))}"]
    lines += [f"leaves out {name}: {reason}" for name, reason in plan.left_out.items()]
    return lines + plan.notes


def main(args) -> int:
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
        print(f"dry run: {args.model_dir} is ready for {args.repo_id} ({kind}; files, safetensors, code, card and a "
              "fresh-process load of exactly these files checked); nothing was uploaded")  # fmt: skip
        return 0
    commit, plan = push_folder(args.model_dir, args.repo_id, private=args.private, revision=args.revision,
                               token=args.token, commit_message=args.commit_message)  # fmt: skip
    for line in describe(plan):
        print(f"  {line}")
    print(f"pushed {args.model_dir} to {args.repo_id}: commit {commit.oid} ({commit.commit_url})")
    return 0
