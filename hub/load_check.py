"""Run in a fresh process: load a model folder as a user without the faceinsight package would, and answer.

`faceinsight` is made unimportable first, so everything must come from the folder's remote code (or, for a LoRA
adapter folder, from PEFT on top of its base). Prints one line `REPORT {json}`; exits non-zero on any failure.
Used by the tests, by `faceinsight demo` and by `faceinsight push --dry-run`.

Usage: python load_check.py FOLDER IMAGE_PATH [QUESTION ...]
"""

import importlib.abc
import json
import os
import sys
from pathlib import Path


class BlockFaceInsight(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "faceinsight" or name.startswith("faceinsight."):
            raise ModuleNotFoundError(f"{name} is blocked: this process plays a user without faceinsight installed")


sys.meta_path.insert(0, BlockFaceInsight())

import torch  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    AutoImageProcessor,
    AutoModel,
    AutoModelForImageTextToText,
    AutoProcessor,
    pipeline,
)

GREEDY = {"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}


def check_full_folder(folder: str, face: Image.Image, questions: list[str]) -> dict:
    report = {}
    model = AutoModel.from_pretrained(folder, trust_remote_code=True, use_safetensors=True)
    report["AutoModel"] = type(model).__name__
    report["AutoModelForImageTextToText"] = type(
        AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True, use_safetensors=True)
    ).__name__
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    report["AutoProcessor"] = type(processor).__name__
    report["AutoImageProcessor"] = type(AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)).__name__

    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this person smiling?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=[face], text=prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, **GREEDY)
    report["generate_new_tokens"] = generated.shape[1] - inputs["input_ids"].shape[1]
    predictions = model.predict_face_labels(inputs["pixel_values"])
    attributes = processor.post_process_face_labels(predictions.probabilities, predictions.decisions)[0]
    report["facets"] = sorted(attributes["facets"])
    report["attributes"] = attributes

    pipe = pipeline("image-text-to-text", model=folder, trust_remote_code=True)
    chat = [
        {
            "role": "user",
            "content": [{"type": "image", "image": face}, {"type": "text", "text": "How old is this person?"}],
        }
    ]
    answer = pipe(text=chat, generate_kwargs=GREEDY)
    report["pipeline_roles"] = [m["role"] for m in answer[0]["generated_text"]]
    report["pipeline_answer_type"] = type(answer[0]["generated_text"][-1]["content"]).__name__
    if model.config.grounded_descriptions:  # the description the pipeline writes, beside the decisions it states
        question = "Can you give a detailed description of the person in the image?"
        chat = [{"role": "user", "content": [{"type": "image", "image": face}, {"type": "text", "text": question}]}]
        output = pipe(text=chat, generate_kwargs={"max_new_tokens": 160, "do_sample": False}, return_full_text=False)
        report["description"] = output[0]["generated_text"]
        report["decided_labels"] = model.config.decided_labels(predictions.decisions[0].tolist())
    report["answers"] = {}
    for question in questions:
        chat = [{"role": "user", "content": [{"type": "image", "image": face}, {"type": "text", "text": question}]}]
        output = pipe(text=chat, generate_kwargs={"max_new_tokens": 24, "do_sample": False}, return_full_text=False)
        report["answers"][question] = output[0]["generated_text"]
    return report


def check_adapter_folder(folder: str, face: Image.Image) -> dict:
    """A LoRA adapter: PEFT puts it on its base (which must load with the Auto classes) and the result answers."""
    from peft import PeftConfig, PeftModel

    config = PeftConfig.from_pretrained(folder)
    base_source = os.environ.get("FACEINSIGHT_ADAPTER_BASE") or config.base_model_name_or_path  # a local copy
    base = AutoModel.from_pretrained(base_source, trust_remote_code=True, use_safetensors=True)
    knowledge = Path(folder) / "faceinsight_knowledge.json"
    if knowledge.is_file():  # the adapter's C_hat and rules replace the base's (they live in the config)
        for name, value in json.loads(knowledge.read_text()).items():
            setattr(base.config, name, value)
        base.refresh_config_buffers()
    model = PeftModel.from_pretrained(base, folder)
    processor = AutoProcessor.from_pretrained(base_source, trust_remote_code=True)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this person smiling?"}]}]
    prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
    inputs = processor(images=[face], text=prompt, return_tensors="pt")
    with torch.no_grad():
        generated = model.generate(**inputs, **GREEDY)
    lora_modules = sum(1 for name, _ in model.named_modules() if name.endswith("lora_A"))
    return {
        "adapter_base": config.base_model_name_or_path,
        "AutoModel": type(base).__name__,
        "lora_modules": lora_modules,
        "knowledge_applied": knowledge.is_file(),
        "generate_new_tokens": generated.shape[1] - inputs["input_ids"].shape[1],
    }


def main(argv: list[str]) -> int:
    folder, image_path, questions = argv[0], argv[1], argv[2:]
    face = Image.open(image_path).convert("RGB")
    if (Path(folder) / "adapter_config.json").exists():
        report = check_adapter_folder(folder, face)
    else:
        report = check_full_folder(folder, face, questions)
    report["faceinsight_imported"] = sorted(name for name in sys.modules if name.startswith("faceinsight"))
    print("REPORT " + json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
