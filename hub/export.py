"""Writing Hub-ready FaceInsight folders: safetensors weights, config with a complete `auto_map`, the remote-code
files, processor files with chat template, and a model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
REMOTE_CODE_FILES = {
    "configuration_faceinsight.py": PACKAGE_ROOT / "modeling" / "configuration_faceinsight.py",
    "modeling_faceinsight.py": PACKAGE_ROOT / "modeling" / "modeling_faceinsight.py",
    "knowledge_faceinsight.py": PACKAGE_ROOT / "modeling" / "knowledge_faceinsight.py",
    "processing_faceinsight.py": PACKAGE_ROOT / "processing" / "processing_faceinsight.py",
    "image_processing_faceinsight.py": PACKAGE_ROOT / "processing" / "image_processing_faceinsight.py",
}
MODEL_CLASS = "modeling_faceinsight.FaceInsightForConditionalGeneration"
CONFIG_AUTO_MAP = {
    "AutoConfig": "configuration_faceinsight.FaceInsightConfig",
    "AutoModel": MODEL_CLASS,
    "AutoModelForImageTextToText": MODEL_CLASS,
    "AutoModelForVision2Seq": MODEL_CLASS,
    "AutoProcessor": "processing_faceinsight.FaceInsightProcessor",
    "AutoImageProcessor": "image_processing_faceinsight.FaceInsightImageProcessor",
}
PROCESSOR_AUTO_MAP = {"AutoProcessor": CONFIG_AUTO_MAP["AutoProcessor"]}
IMAGE_PROCESSOR_AUTO_MAP = {
    "AutoImageProcessor": CONFIG_AUTO_MAP["AutoImageProcessor"],
    "AutoProcessor": CONFIG_AUTO_MAP["AutoProcessor"],
}


def _update_json(path: Path, **fields):
    data = json.loads(path.read_text())
    data.update(fields)
    path.write_text(json.dumps(data, indent=2) + "\n")


def save_model_folder(model, processor, output_dir: str | Path, model_card: str | None = None) -> Path:
    """Write `model` and `processor` as a folder that loads with the Auto classes and `trust_remote_code=True` in a
    process that has only torch and transformers (no faceinsight), and that `huggingface_hub` can upload as is."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.config.auto_map = dict(CONFIG_AUTO_MAP)
    model.config.architectures = ["FaceInsightForConditionalGeneration"]
    model.save_pretrained(output_dir)
    processor.save_pretrained(output_dir)
    processor.image_processor.save_pretrained(output_dir)  # preprocessor_config.json, for AutoImageProcessor
    for name, source in REMOTE_CODE_FILES.items():
        shutil.copyfile(source, output_dir / name)
    _update_json(output_dir / "config.json", auto_map=CONFIG_AUTO_MAP)
    _update_json(output_dir / "preprocessor_config.json", auto_map=IMAGE_PROCESSOR_AUTO_MAP)
    processor_config = output_dir / "processor_config.json"
    if not processor_config.exists():
        processor_config.write_text("{}\n")
    nested_image_processor = json.loads(processor_config.read_text()).get("image_processor")
    extra = {}
    if isinstance(nested_image_processor, dict):  # transformers 5 nests sub-processor configs; they need the map too
        extra["image_processor"] = {**nested_image_processor, "auto_map": IMAGE_PROCESSOR_AUTO_MAP}
    _update_json(processor_config, auto_map=PROCESSOR_AUTO_MAP, processor_class="FaceInsightProcessor", **extra)
    pickles = sorted(p.name for p in output_dir.iterdir() if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    if pickles:
        raise RuntimeError(f"refusing to leave pickled weights in {output_dir}: {pickles}")
    (output_dir / "README.md").write_text(model_card or default_model_card(model.config))
    return output_dir


def default_model_card(config) -> str:
    from faceinsight.hub.model_card import render_model_card

    return render_model_card(config)
