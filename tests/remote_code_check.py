"""Run in a fresh process: load a FaceInsight folder as a user without the faceinsight package would, and answer.

`faceinsight` is made unimportable first, so everything must come from the folder's remote code.
Usage: python remote_code_check.py FOLDER IMAGE_PATH
"""

import importlib.abc
import json
import sys


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

folder, image_path = sys.argv[1], sys.argv[2]
face = Image.open(image_path)
report = {}

model = AutoModel.from_pretrained(folder, trust_remote_code=True)
report["AutoModel"] = type(model).__name__
report["AutoModelForImageTextToText"] = type(
    AutoModelForImageTextToText.from_pretrained(folder, trust_remote_code=True)
).__name__
processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
report["AutoProcessor"] = type(processor).__name__
report["AutoImageProcessor"] = type(AutoImageProcessor.from_pretrained(folder, trust_remote_code=True)).__name__

messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Is this person smiling?"}]}]
prompt = processor.apply_chat_template(messages, add_generation_prompt=True)
inputs = processor(images=[face], text=prompt, return_tensors="pt")
with torch.no_grad():
    generated = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)
report["generate_new_tokens"] = generated.shape[1] - inputs["input_ids"].shape[1]
predictions = model.predict_attributes(inputs["pixel_values"])
report["facets"] = sorted(
    processor.post_process_attributes(predictions.probabilities, predictions.decisions)[0]["facets"]
)

pipe = pipeline("image-text-to-text", model=folder, trust_remote_code=True)
chat = [
    {"role": "user", "content": [{"type": "image", "image": face}, {"type": "text", "text": "How old is this person?"}]}
]
answer = pipe(text=chat, generate_kwargs={"max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False})
report["pipeline_roles"] = [m["role"] for m in answer[0]["generated_text"]]
report["pipeline_answer_type"] = type(answer[0]["generated_text"][-1]["content"]).__name__
report["faceinsight_imported"] = sorted(name for name in sys.modules if name.startswith("faceinsight"))
print("REPORT " + json.dumps(report))
