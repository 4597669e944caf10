"""Checks that a model folder is ready for the Hub, without network: the files a user needs are there, the weights
are safetensors (no pickles), the model card is filled, and the folder loads and answers in a separate process that
cannot import faceinsight (so only the folder's remote code, or PEFT for an adapter, is used)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from faceinsight.hub.export import REMOTE_CODE_FILES
from faceinsight.hub.model_card import card_problems

LOAD_CHECK = Path(__file__).with_name("load_check.py")
DEFAULT_IMAGE = Path(__file__).resolve().parent.parent / "assets" / "astronaut_face.png"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json", "tokenizer_config.json", "tokenizer.json")


def is_adapter_folder(folder: str | Path) -> bool:
    return (Path(folder) / "adapter_config.json").is_file()


def file_problems(folder: str | Path) -> list[str]:
    """Missing or unsafe files, each named."""
    folder = Path(folder)
    if not folder.is_dir():
        return [f"{folder} is not a folder"]
    names = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    problems = [f"{name}: pickled weights (unsafe to load; save with safetensors)" for name in sorted(names)
                if name.endswith(PICKLE_SUFFIXES)]  # fmt: skip
    if is_adapter_folder(folder):
        if "adapter_model.safetensors" not in names:
            problems.append("adapter_model.safetensors is missing")
        base = json.loads((folder / "adapter_config.json").read_text()).get("base_model_name_or_path")
        if not base:
            problems.append("adapter_config.json names no base_model_name_or_path")
        return problems + card_problems(folder / "README.md")
    if "config.json" not in names:
        return problems + ["config.json is missing"]
    if "model.safetensors" not in names and "model.safetensors.index.json" not in names:
        problems.append("model.safetensors (or a sharded model.safetensors.index.json) is missing")
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        shards = set(json.loads(index.read_text())["weight_map"].values())
        problems += [f"{shard} (listed in model.safetensors.index.json) is missing" for shard in sorted(shards - names)]
    config = json.loads((folder / "config.json").read_text())
    if config.get("model_type") == "faceinsight":
        problems += [f"{name} is missing (remote code: the model cannot load without it)"
                     for name in REMOTE_CODE_FILES if name not in names]  # fmt: skip
        if "chat_template.jinja" not in names and "chat_template.json" not in names:
            problems.append("chat_template.jinja is missing (the pipeline and TRL need the chat template)")
    problems += [f"{name} is missing (processor)" for name in PROCESSOR_FILES if name not in names]
    return problems + card_problems(folder / "README.md")


def run_load_check(folder: str | Path, image: str | Path = DEFAULT_IMAGE, questions: tuple[str, ...] = (),
                   timeout: int = 900) -> dict:  # fmt: skip
    """Load `folder` in a fresh Python process without faceinsight and ask it questions; the process's report."""
    environment = {**os.environ, "HF_HUB_DISABLE_TELEMETRY": "1"}
    if not is_adapter_folder(folder):
        environment["HF_HUB_OFFLINE"] = "1"  # a full folder must load from its own files alone
    with tempfile.TemporaryDirectory() as scratch:  # not the repository root: nothing importable by accident
        result = subprocess.run(
            [sys.executable, str(LOAD_CHECK), str(Path(folder).resolve()), str(Path(image).resolve()), *questions],
            capture_output=True, text=True, cwd=scratch, timeout=timeout, env=environment,
        )  # fmt: skip
    if result.returncode != 0 or "REPORT " not in result.stdout:
        raise RuntimeError(f"{folder} does not load in a fresh process through the Auto classes with "
                           f"trust_remote_code:\n{result.stderr.strip()[-2500:]}")  # fmt: skip
    return json.loads(result.stdout.split("REPORT ", 1)[1])


def validate_folder(folder: str | Path, image: str | Path = DEFAULT_IMAGE) -> tuple[list[str], dict | None]:
    """(problems, load report): files first; the load check runs only when the files are in order."""
    problems = file_problems(folder)
    if any("missing" in p or "pickled" in p for p in problems):
        return problems, None
    try:
        return problems, run_load_check(folder, image)
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        return problems + [str(error)], None
