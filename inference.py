"""Asking a FaceInsight model about a face: chat answers and structured predictions, from one loaded folder."""

from __future__ import annotations

import torch
from transformers import AutoModel, AutoProcessor


class FaceInsightAssistant:
    """A loaded model and processor with the two questions users ask: `ask` (text) and `attributes` (structured)."""

    def __init__(self, model, processor):
        self.model = model.eval()
        self.processor = processor

    @classmethod
    def from_pretrained(cls, model_dir: str, trust_remote_code: bool = False, **model_kwargs) -> FaceInsightAssistant:
        """No code of the model's own runs unless `trust_remote_code`: a FaceInsight folder (or Hub repository)
        loads with this installed package's classes."""
        from faceinsight.hub.validate import trust_remote_code_for

        trust_remote_code = trust_remote_code_for(model_dir, trust_remote_code)
        model_kwargs.setdefault("use_safetensors", True)  # never unpickle weights
        model = AutoModel.from_pretrained(model_dir, trust_remote_code=trust_remote_code, **model_kwargs)
        processor = AutoProcessor.from_pretrained(model_dir, trust_remote_code=trust_remote_code)
        return cls(model, processor)

    def _image_inputs(self, image, parsing_map=None):
        maps = None if parsing_map is None else [parsing_map]
        return self.processor.image_processor([image], parsing_maps=maps, return_tensors="pt")

    @torch.no_grad()
    def ask(self, image, question: str, parsing_map=None, max_new_tokens: int = 64) -> str:
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
        prompt = self.processor.apply_chat_template(messages, add_generation_prompt=True)
        maps = None if parsing_map is None else [parsing_map]
        inputs = self.processor(images=[image], text=prompt, parsing_maps=maps, return_tensors="pt").to(
            self.model.device
        )
        self.check_context(inputs["input_ids"].shape[1], max_new_tokens)
        generated = self.model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
        new_tokens = generated[:, inputs["input_ids"].shape[1] :]
        return self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()

    def check_context(self, prompt_tokens: int, max_new_tokens: int):
        """A prompt (image and parsing tokens included) plus the answer must fit the language model's context."""
        context = getattr(self.model.config.get_text_config(), "max_position_embeddings", None)
        if context is not None and prompt_tokens + max_new_tokens > context:
            raise ValueError(
                f"the prompt is {prompt_tokens} tokens (the image's included) and {max_new_tokens} new tokens make "
                f"{prompt_tokens + max_new_tokens}, over the language model's context of {context} "
                "(max_position_embeddings); shorten the question or --max-new-tokens"
            )

    @torch.no_grad()
    def attributes(self, image, parsing_map=None) -> dict:
        inputs = self._image_inputs(image, parsing_map)
        predictions = self.model.predict_face_labels(inputs["pixel_values"], inputs.get("parsing_maps"))
        return self.processor.post_process_face_labels(
            predictions.probabilities, predictions.decisions, predictions.trained, predictions.face_shares
        )[0]
