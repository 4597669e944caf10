"""`faceinsight push`: publish a model (or LoRA adapter) folder to the Hugging Face Hub with huggingface_hub.

`--dry-run` validates without network (files, safetensors only, filled card, loads in a fresh process) and uploads
nothing. A real push validates the files first, then creates the repository (if needed), the branch for
`--revision` (if needed), and uploads the folder in one commit.
"""

from __future__ import annotations

from pathlib import Path

from faceinsight.hub.validate import file_problems, validate_folder

IGNORED = ["checkpoint-*/**", "adapter/**", "runs/**", ".git/**", "**/__pycache__/**", "*.lock", ".cache/**"]


def push_folder(folder: str | Path, repo_id: str, private: bool = False, revision: str | None = None,
                token: str | None = None, commit_message: str | None = None, endpoint: str | None = None):  # fmt: skip
    """Upload `folder` to `repo_id`; returns huggingface_hub's CommitInfo (commit id and URL)."""
    from huggingface_hub import HfApi

    problems = [p for p in file_problems(folder) if "missing" in p or "pickled" in p]
    if problems:
        raise ValueError(f"{folder} is not ready to publish:\n  " + "\n  ".join(problems))
    api = HfApi(token=token, endpoint=endpoint)
    api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    return api.upload_folder(
        folder_path=str(folder), repo_id=repo_id, repo_type="model", revision=revision,
        commit_message=commit_message or f"Upload {Path(folder).name} with faceinsight push",
        ignore_patterns=IGNORED,
    )  # fmt: skip


def main(args) -> int:
    if args.dry_run:
        problems, report = validate_folder(args.model_dir)
        if problems:
            print(f"faceinsight push --dry-run: {args.model_dir} is NOT ready for {args.repo_id}:")
            for problem in problems:
                print(f"  - {problem}")
            return 1
        kind = "adapter on " + report["adapter_base"] if "adapter_base" in report else report["AutoModel"]
        print(f"dry run: {args.model_dir} is ready for {args.repo_id} ({kind}; files, safetensors, card and a "
              "fresh-process load through the Auto classes checked); nothing was uploaded")  # fmt: skip
        return 0
    commit = push_folder(args.model_dir, args.repo_id, private=args.private, revision=args.revision,
                         token=args.token, commit_message=args.commit_message)  # fmt: skip
    print(f"pushed {args.model_dir} to {args.repo_id}: commit {commit.oid} ({commit.commit_url})")
    return 0
