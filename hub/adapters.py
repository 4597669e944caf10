"""LoRA adapters: publish one on its own (pointing at its base), or merge it into a full Hub-ready folder.

Knowledge (C_hat, logic rules) lives in the model config, not in weights. When training derived knowledge that differs
from the base's, the adapter folder carries it in `faceinsight_knowledge.json`; `merge_adapter` and
`load_adapter` apply it to the base before the adapter goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

KNOWLEDGE_FILE = "faceinsight_knowledge.json"
KNOWLEDGE_FIELDS = ("correlation_matrix", "correlation_tau", "correlation_omega", "logic_rules", "logic_loss_weight")


def knowledge_of(config) -> dict:
    return {name: getattr(config, name) for name in KNOWLEDGE_FIELDS}


def save_adapter(peft_model, output_dir: str | Path, base: str, base_config, evaluations=None) -> Path:
    """Write the LoRA adapter (+ modules trained in full) with `base` as its base, the knowledge when it differs
    from the base's, and a model card."""
    from faceinsight.hub.model_card import render_model_card

    output_dir = Path(output_dir)
    peft_model.peft_config["default"].base_model_name_or_path = str(base)
    peft_model.save_pretrained(output_dir, safe_serialization=True)
    trained_knowledge = knowledge_of(peft_model.base_model.model.config)
    if trained_knowledge != knowledge_of(base_config):
        (output_dir / KNOWLEDGE_FILE).write_text(json.dumps(trained_knowledge) + "\n")
    card = render_model_card(
        peft_model.base_model.model.config,
        repo_id=str(base),
        evaluations=evaluations,
        base_models=[str(base)],
        library_name="peft",
        model_name="FaceInsight LoRA adapter",
        adapter_of=str(base),
    )
    (output_dir / "README.md").write_text(card)
    return output_dir


def load_adapter(adapter_dir: str | Path, base: str | None = None):
    """(PeftModel on its base with the adapter's knowledge applied, processor)."""
    from peft import PeftConfig, PeftModel
    from transformers import AutoProcessor

    from faceinsight import FaceInsightForConditionalGeneration

    adapter_dir = Path(adapter_dir)
    base = base or PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path
    model = FaceInsightForConditionalGeneration.from_pretrained(base, use_safetensors=True)
    knowledge_file = adapter_dir / KNOWLEDGE_FILE
    if knowledge_file.is_file():
        for name, value in json.loads(knowledge_file.read_text()).items():
            setattr(model.config, name, value)
        model.config.validate()
        model.refresh_config_buffers()
    return PeftModel.from_pretrained(model, adapter_dir), AutoProcessor.from_pretrained(base)


def merge_adapter(adapter_dir: str | Path, output_dir: str | Path, base: str | None = None) -> Path:
    """Merge the adapter into its base and write a full Hub-ready folder."""
    from faceinsight.hub.export import save_model_folder

    model, processor = load_adapter(adapter_dir, base)
    merged = model.merge_and_unload()
    return save_model_folder(merged.eval(), processor, output_dir)
