"""What `faceinsight push` publishes, and the checks its dry run makes on exactly that.

The upload is an allow-list (`plan_upload`): the files a model or adapter folder consists of (weights, configs,
remote code, processor and tokenizer files, card, reports, pictures), at the folder's top level. Everything else is
left out and named: hidden files, anything that looks like a credential or key, symlinks that leave the folder,
sub-folders (checkpoints, runs), trainer leftovers (`training_args.bin`) and pickles.

Remote code is checked before it is run: the folder's code files must be byte-identical (sha256) to this installed
package's own, or the folder is refused, naming the file, before any load check imports anything. The load check then
runs on a staged copy of exactly the planned files, in a fresh process that cannot import faceinsight.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from faceinsight.hub.export import PACKAGE_ROOT, PICKLE_SUFFIXES, REMOTE_CODE_FILES
from faceinsight.hub.model_card import REPO_PLACEHOLDER, card_problems

LOAD_CHECK = Path(__file__).with_name("load_check.py")
DEFAULT_IMAGE = PACKAGE_ROOT / "assets" / "astronaut_face.png"
PROCESSOR_FILES = ("processor_config.json", "tokenizer_config.json", "tokenizer.json")
ALLOWED_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "faceinsight_knowledge.json",
    "processor_config.json",
    "preprocessor_config.json",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.jinja",
    "chat_template.json",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "README.md",
    "eval_report.json",
    "training_report.json",
    "knowledge_summary.json",
    "parser_report.json",
    "demo_report.json",
    *REMOTE_CODE_FILES,
}
ALLOWED_PATTERN = re.compile(r"(model-\d{5}-of-\d{5}\.safetensors|[\w.-]+\.(png|jpg|jpeg))")
SECRET_PATTERN = re.compile(
    r"token|secret|passw|credential|api[_-]?key|id_(rsa|dsa|ecdsa|ed25519)|\.(pem|key|p12|pfx)$", re.IGNORECASE
)
TRAINER_CARD_TAGS = ("generated_from_trainer", "trl")


@dataclass
class UploadPlan:
    """`files`: path in the repository -> the file to send (or the bytes, for a generated card); `left_out`: path ->
    why it is not sent; `notes`: what the plan changed (a card written from config.json)."""

    folder: Path
    files: dict[str, Path | bytes] = field(default_factory=dict)
    left_out: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def stage(self, target: Path) -> Path:
        """Write exactly the planned files into `target` (for the load check)."""
        for name, source in self.files.items():
            if isinstance(source, bytes):
                (target / name).write_bytes(source)
            else:
                shutil.copyfile(source, target / name)
        return target


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _why_left_out(folder: Path, path: Path) -> str | None:
    """None when the top-level entry `path` belongs to a model folder; else the reason it is not published."""
    name = path.name
    if name.startswith("."):
        return "hidden file"
    if path.is_symlink() and not path.resolve().is_relative_to(folder.resolve()):
        return "symlink out of the folder"
    if path.is_dir():
        return "training checkpoint" if name.startswith("checkpoint-") else "sub-folder (not part of a model folder)"
    if SECRET_PATTERN.search(name) and name not in ALLOWED_FILES:
        return "looks like a credential or key"
    if name == "training_args.bin":
        return "trainer leftover (pickled training arguments)"
    if name.endswith(PICKLE_SUFFIXES):
        return "pickled weights (never published; save with safetensors)"
    if name in ALLOWED_FILES or ALLOWED_PATTERN.fullmatch(name):
        return None
    return "not part of a model or adapter folder"


def _is_trainer_draft(readme: Path) -> bool:
    from huggingface_hub import ModelCard

    try:
        tags = ModelCard.load(readme).data.tags or []
    except Exception:  # noqa: BLE001 - an unreadable card is not a trainer's draft; card_problems names it
        return False
    return any(tag in TRAINER_CARD_TAGS for tag in tags)


def _plan_card(plan: UploadPlan, repo_id: str | None):
    """A missing card, or a trainer's draft (TRL's, the Trainer's), becomes FaceInsight's card written from
    config.json; a card FaceInsight wrote gets the repository's id in its code sample; a card the user wrote is
    published as it is (and checked)."""
    readme = plan.folder / "README.md"
    config_file = plan.folder / "config.json"
    if readme.is_file() and not _is_trainer_draft(readme):
        text = readme.read_text()
        if repo_id and REPO_PLACEHOLDER in text:
            plan.files["README.md"] = text.replace(REPO_PLACEHOLDER, repo_id).encode()
            plan.notes.append(f"README.md: its code sample's {REPO_PLACEHOLDER} is filled with {repo_id} in the upload")
        return
    if is_adapter_folder(plan.folder) or not config_file.is_file():
        return
    if json.loads(config_file.read_text()).get("model_type") != "faceinsight":
        return
    from faceinsight import FaceInsightConfig
    from faceinsight.hub.model_card import render_model_card

    config = FaceInsightConfig.from_pretrained(plan.folder)
    plan.files["README.md"] = render_model_card(config, repo_id=repo_id or "MODEL_DIR_OR_ID").encode()
    plan.notes.append(
        f"README.md: {'the trainer draft card is' if readme.is_file() else 'no card; '} replaced by FaceInsight's card "
        "(written from config.json; the folder itself is not changed)"
    )


def plan_upload(folder: str | Path, repo_id: str | None = None) -> UploadPlan:
    folder = Path(folder)
    plan = UploadPlan(folder)
    for path in sorted(folder.iterdir(), key=lambda p: p.name):
        reason = _why_left_out(folder, path)
        if reason is None:
            plan.files[path.name] = path.resolve()
        else:
            plan.left_out[path.name + ("/" if path.is_dir() else "")] = reason
    _plan_card(plan, repo_id)
    return plan


def code_problems(folder: str | Path) -> list[str]:
    """Remote-code files of `folder` that differ from this installed package's own, each named."""
    problems = []
    for name, source in REMOTE_CODE_FILES.items():
        path = Path(folder) / name
        if path.is_file() and sha256(path) != sha256(source):
            problems.append(
                f"{name} differs from the installed faceinsight's own (sha256 {sha256(path)[:12]} vs "
                f"{sha256(source)[:12]}): its code is not run or published; save the model again with this "
                "faceinsight (save_pretrained writes the code files)"
            )
    return problems


def trust_remote_code_for(model_name_or_path: str, trust_remote_code: bool = False) -> bool:
    """What a command passes as `trust_remote_code`: only what the user said (`--trust_remote_code`). A FaceInsight
    folder needs none: this installed package's registered classes load it, so none of the folder's code runs; when
    its code files differ from ours, a note says that the installed code is what runs."""
    folder = Path(model_name_or_path)
    if not trust_remote_code and folder.is_dir():
        differing = [problem.split(" ", 1)[0] for problem in code_problems(folder)]
        if differing:
            print(
                f"note: {folder}'s {', '.join(differing)} differ from the installed faceinsight's; running the "
                "installed code, not the folder's (--trust_remote_code runs the folder's own)",
                file=sys.stderr,
            )
    return bool(trust_remote_code)


def plan_problems(plan: UploadPlan) -> list[str]:
    """Missing or unsafe files of the plan, each named."""
    names, folder = set(plan.files), plan.folder
    problems = [
        f"{name}: pickled weights (unsafe to load; save with safetensors)"
        for name, reason in plan.left_out.items()
        if reason.startswith("pickled weights")
    ]
    if is_adapter_folder(folder):
        if "adapter_model.safetensors" not in names:
            problems.append("adapter_model.safetensors is missing")
        base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            problems.append("adapter_config.json names no base_model_name_or_path")
        elif base.startswith(("/", "./", "../", "~")) or Path(base).exists():
            problems.append(
                f"adapter_config.json: base_model_name_or_path is a local path ({base}); a Hub user "
                "cannot load it: train with --adapter_base ORG/BASE (the base's repo id)"
            )
        return problems + _card_problems(plan)
    if "config.json" not in names:
        return problems + ["config.json is missing"]
    if "model.safetensors" not in names and "model.safetensors.index.json" not in names:
        problems.append("model.safetensors (or a sharded model.safetensors.index.json) is missing")
    if "model.safetensors.index.json" in names:
        shards = set(json.loads((folder / "model.safetensors.index.json").read_text())["weight_map"].values())
        problems += [f"{shard} (listed in model.safetensors.index.json) is missing" for shard in sorted(shards - names)]
    if json.loads((folder / "config.json").read_text()).get("model_type") == "faceinsight":
        problems += [
            f"{name} is missing (remote code: the model cannot load without it)"
            for name in REMOTE_CODE_FILES
            if name not in names
        ]
        if "chat_template.jinja" not in names and "chat_template.json" not in names:
            problems.append("chat_template.jinja is missing (the pipeline and TRL need the chat template)")
    problems += [f"{name} is missing (processor)" for name in PROCESSOR_FILES if name not in names]
    return problems + _card_problems(plan)


def _card_problems(plan: UploadPlan) -> list[str]:
    card = plan.files.get("README.md")
    if isinstance(card, bytes):
        with tempfile.TemporaryDirectory() as scratch:
            (Path(scratch) / "README.md").write_bytes(card)
            return card_problems(Path(scratch) / "README.md")
    return card_problems(plan.folder / "README.md")


def run_load_check(
    folder: str | Path,
    image: str | Path = DEFAULT_IMAGE,
    questions: tuple[str, ...] = (),
    timeout: int = 900,
    base_dir: str | Path | None = None,
) -> dict:
    """Load `folder` in a fresh Python process without faceinsight and ask it questions; the process's report.
    `base_dir`: for an adapter, a local copy of its base to load instead of the repo id it names."""
    environment = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"}
    if not is_adapter_folder(folder) or base_dir is not None:
        environment["HF_HUB_OFFLINE"] = "1"  # a full folder must load from its own files alone
    if base_dir is not None:
        environment["FACEINSIGHT_ADAPTER_BASE"] = str(Path(base_dir).resolve())
    with tempfile.TemporaryDirectory() as scratch:  # not the repository root: nothing importable by accident
        result = subprocess.run(
            [sys.executable, str(LOAD_CHECK), str(Path(folder).resolve()), str(Path(image).resolve()), *questions],
            capture_output=True,
            text=True,
            cwd=scratch,
            timeout=timeout,
            env=environment,
        )
    if result.returncode != 0 or "REPORT " not in result.stdout:
        raise RuntimeError(
            f"{folder} does not load in a fresh process through the Auto classes with "
            f"trust_remote_code:\n{result.stderr.strip()[-2500:]}"
        )
    return json.loads(result.stdout.split("REPORT ", 1)[1])


def validate_folder(
    folder: str | Path,
    repo_id: str | None = None,
    image: str | Path = DEFAULT_IMAGE,
    base_dir: str | Path | None = None,
):
    """(problems, load report, plan). Files and code first; the load check (which runs the folder's code, on a
    staged copy of the planned files) only when they are in order. `base_dir`: a local copy of an adapter's base."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"], None, None
    plan = plan_upload(folder, repo_id)
    problems = plan_problems(plan) + code_problems(folder)
    base = Path(base_dir) if base_dir is not None else _local_adapter_base(folder)
    if base is not None:  # the load check runs the base's code too
        problems += [f"adapter base {base}: {problem}" for problem in code_problems(base)]
    if problems:
        return problems, None, plan
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / folder.name
        staged.mkdir()
        try:
            return [], run_load_check(plan.stage(staged), image, base_dir=base_dir), plan
        except (RuntimeError, subprocess.TimeoutExpired) as error:
            return [str(error)], None, plan


def _local_adapter_base(folder: Path) -> Path | None:
    if not is_adapter_folder(folder):
        return None
    base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
    return Path(base) if base and Path(base).is_dir() else None
