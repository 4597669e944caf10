"""Writing Hub-ready FaceInsight folders.

The folder itself is what `save_pretrained` writes: importing faceinsight registers the classes for remote code
(`register_for_auto_class`), so every save, this one and `Trainer.save_model` or `trl sft` alike, copies the code
files and writes a complete `auto_map`. This module adds the model card and refuses to leave pickled weights.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
# the remote-code files of a saved folder, and where this package keeps each one
REMOTE_CODE_FILES = {
    "configuration_faceinsight.py": PACKAGE_ROOT / "modeling" / "configuration_faceinsight.py",
    "modeling_faceinsight.py": PACKAGE_ROOT / "modeling" / "modeling_faceinsight.py",
    "knowledge_faceinsight.py": PACKAGE_ROOT / "modeling" / "knowledge_faceinsight.py",
    "schema_faceinsight.py": PACKAGE_ROOT / "modeling" / "schema_faceinsight.py",
    "processing_faceinsight.py": PACKAGE_ROOT / "processing" / "processing_faceinsight.py",
    "image_processing_faceinsight.py": PACKAGE_ROOT / "processing" / "image_processing_faceinsight.py",
}
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def save_model_folder(model, processor, output_dir: str | Path, model_card: str | None = None) -> Path:
    """Write `model` and `processor` as a folder that loads with the Auto classes and `trust_remote_code=True` in a
    process that has only torch and transformers (no faceinsight), with a model card."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    pickles = sorted(p.name for p in output_dir.iterdir() if p.suffix in PICKLE_SUFFIXES)
    if pickles:
        raise RuntimeError(f"refusing to leave pickled weights in {output_dir}: {pickles}")
    (output_dir / "README.md").write_text(model_card or default_model_card(model.config))
    usual_file_modes(output_dir)
    return output_dir


def usual_file_modes(folder: Path):
    """Every file of `folder` with the mode new files get here (the weights are written through a private temporary
    file, which left model.safetensors at 0600 beside 0644 for everything else)."""
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.iterdir():
        if path.is_file() and not path.is_symlink():
            path.chmod(0o666 & ~umask)


def default_model_card(config) -> str:
    from faceinsight.hub.model_card import render_model_card

    return render_model_card(config)
