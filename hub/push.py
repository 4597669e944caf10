"""Publishing a model (or LoRA adapter) folder to the Hugging Face Hub with huggingface_hub (`faceinsight push`).

The dry run and the upload use one plan (`hub.validate.plan_upload`): the allow-listed files of the folder, nothing
else. `--dry-run` checks it without network (files, safetensors only, code identical to this package's, filled card,
loads in a fresh process) and uploads nothing. A real push checks the files and the code first, then creates the
repository (if needed), the branch for `--revision` (if needed), and uploads the plan in one commit.
"""

from __future__ import annotations

from pathlib import Path

from faceinsight.hub.validate import code_problems, plan_problems, plan_upload


def push_folder(
    folder: str | Path,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    endpoint: str | None = None,
):
    """Upload the plan of `folder` to `repo_id`; returns huggingface_hub's CommitInfo (commit id and URL)."""
    from huggingface_hub import CommitOperationAdd, HfApi

    plan = plan_upload(folder, repo_id)
    problems = [
        p for p in plan_problems(plan) + code_problems(folder) if "missing" in p or "pickled" in p or "differs" in p
    ]
    if problems:
        raise ValueError(f"{folder} is not ready to publish: " + "; ".join(problems))
    api = HfApi(token=token, endpoint=endpoint)
    api.create_repo(repo_id, private=private, repo_type="model", exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=source if isinstance(source, bytes) else str(source))
        for name, source in plan.files.items()
    ]
    return api.create_commit(
        repo_id=repo_id,
        repo_type="model",
        revision=revision,
        operations=operations,
        commit_message=commit_message or f"Upload {Path(folder).name} with faceinsight push",
    ), plan
