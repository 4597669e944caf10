"""FaceInsight processor: chat template, `<image>` expansion into image + parsing tokens, tokenisation, decoding,
and readable structured predictions.

Uploaded to the Hub as remote code: imports only `torch`, `transformers` and same-folder modules. It never imports
the modeling code; token strings, sequence lengths and the facet schema come from its own saved attributes.
"""

import torch
from transformers.image_processing_base import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .image_processing_faceinsight import flatten_images

# A parsing map whose face parts (skin, nose, eyes, brows, mouth, lips) cover less than this share of its pixels
# shows no face the parser can see: predictions for it are flagged, not hidden.
MIN_FACE_SHARE = 0.02

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{{ '<image>' }}"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{{ '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class FaceInsightProcessor(ProcessorMixin):
    """Wraps a `FaceInsightImageProcessor` and a tokenizer.

    Each `<image>` in the text stands for one image and is expanded to `image_seq_length` image tokens followed by
    `parsing_seq_length` parsing tokens; the model scatters its visual features into those positions.
    """

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        chat_template=None,
        image_token: str = "<image>",
        parsing_token: str = "<parsing>",
        image_seq_length: int = 196,
        parsing_seq_length: int = 49,
        binary_attributes: list[str] | None = None,
        categorical_facets: dict[str, list[str]] | None = None,
        categorical_facet_order: list[str] | None = None,
        **kwargs,
    ):
        self.image_token = image_token
        self.parsing_token = parsing_token
        self.image_seq_length = int(image_seq_length)
        self.parsing_seq_length = int(parsing_seq_length)
        self.binary_attributes = list(binary_attributes or [])
        categorical_facets = categorical_facets or {}
        # saved JSON sorts dict keys; the facet order (which fixes the label columns) travels as a list
        self.categorical_facet_order = list(categorical_facet_order or categorical_facets)
        self.categorical_facets = {facet: list(categorical_facets[facet]) for facet in self.categorical_facet_order}
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHATML_TEMPLATE)
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        self.parsing_token_id = tokenizer.convert_tokens_to_ids(parsing_token)
        if self.image_token_id == tokenizer.unk_token_id or self.parsing_token_id == tokenizer.unk_token_id:
            raise ValueError(
                f"the tokenizer does not know {image_token!r} / {parsing_token!r}; add them as special tokens"
            )

    @property
    def model_input_names(self):
        return ["input_ids", "attention_mask", "pixel_values", "parsing_maps"]

    # -------------------------------------------------------------------------------------------------------------
    def __call__(self, images=None, text=None, videos=None, audio=None, parsing_maps=None, **kwargs) -> BatchFeature:
        if videos is not None or audio is not None:
            raise ValueError("FaceInsight takes images and text only")
        if text is None:
            raise ValueError("text is required; put one <image> where each image goes (the chat template does this)")
        texts = [text] if isinstance(text, str) else list(text)
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("text must be a string or a list of strings")
        flat_images = flatten_images(images)
        for index, sample in enumerate(texts):
            if self.parsing_token in sample:
                raise ValueError(
                    f"sample {index}: the text holds {self.parsing_token!r}, the reserved parsing placeholder; it "
                    f"cannot appear in text (the processor puts the parsing tokens after each {self.image_token})"
                )
        placeholders = [t.count(self.image_token) for t in texts]
        if sum(placeholders) != len(flat_images):
            raise ValueError(
                f"the text holds {sum(placeholders)} {self.image_token} placeholder(s) "
                f"(per sample: {placeholders}) but {len(flat_images)} image(s) were given; pass exactly one image per "
                "placeholder, in order"
            )

        return_tensors = kwargs.pop("return_tensors", None)
        image_kwargs = {}
        if parsing_maps is not None:
            image_kwargs["parsing_maps"] = parsing_maps
        image_inputs = self.image_processor(flat_images, return_tensors="pt", **image_kwargs) if flat_images else {}

        expanded = self.expand_placeholders(texts)
        text_kwargs = {k: v for k, v in kwargs.items() if k in _TOKENIZER_KWARGS}
        text_inputs = self.tokenizer(expanded, return_token_type_ids=False, **text_kwargs)
        self._check_placeholders_survived(text_inputs["input_ids"], placeholders, text_kwargs)
        return BatchFeature(data={**text_inputs, **image_inputs}, tensor_type=return_tensors)

    def expand_placeholders(self, texts: list[str]) -> list[str]:
        """Each `<image>` -> `image_seq_length` image tokens then `parsing_seq_length` parsing tokens."""
        expansion = self.image_token * self.image_seq_length + self.parsing_token * self.parsing_seq_length
        return [t.replace(self.image_token, expansion) for t in texts]

    def _check_placeholders_survived(self, input_ids, placeholders, text_kwargs):
        for index, (ids, count) in enumerate(zip(input_ids, placeholders)):
            ids = ids.tolist() if hasattr(ids, "tolist") else list(ids)
            images_found, parsing_found = ids.count(self.image_token_id), ids.count(self.parsing_token_id)
            if images_found != count * self.image_seq_length or parsing_found != count * self.parsing_seq_length:
                raise ValueError(
                    f"sample {index}: truncation (max_length={text_kwargs.get('max_length')}) would cut its image "
                    f"placeholders ({images_found + parsing_found} of "
                    f"{count * (self.image_seq_length + self.parsing_seq_length)} kept). Shorten the text or raise "
                    "max_length; image and parsing tokens are never truncated"
                )

    # -------------------------------------------------------------------------------------------------------------
    def batch_decode(self, *args, **kwargs):
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args, **kwargs):
        return self.tokenizer.decode(*args, **kwargs)

    @property
    def label_names(self) -> list[str]:
        names = list(self.binary_attributes)
        for facet, values in self.categorical_facets.items():
            names.extend(f"{facet}:{value}" for value in values)
        return names

    def post_process_face_labels(self, probabilities: torch.Tensor, decisions: torch.Tensor, trained=None,
                                face_shares=None) -> list[dict]:  # fmt: skip
        """Per image: `{"attributes": {name: {"present", "probability"[, "trained"]}}, "facets": {facet: {"value",
        "confidence", "probabilities"[, "trained"]}}[, "face": {"found", "share"}][, "warnings": [...]]}`.

        `probabilities`/`decisions` come from `model.predict_face_labels` (columns in `label_names` order); a facet's
        confidence is its chosen value's probability renormalised over the facet. Pass the predictions' `trained`
        to mark the label nodes no training data covered (their outputs are untrained), and `face_shares` to say
        whether the parser saw a face. Any of those gives a warning a person can read."""
        names = self.label_names
        if probabilities.shape[-1] != len(names):
            raise ValueError(
                f"predictions have {probabilities.shape[-1]} label columns but this processor's schema has "
                f"{len(names)}; processor and model must come from the same folder"
            )
        trained = None if trained is None else [bool(flag) for flag in trained]
        results = []
        for row, (row_probabilities, row_decisions) in enumerate(zip(probabilities.float().cpu(), decisions.cpu())):
            result = {"attributes": self._attributes(row_probabilities, row_decisions, trained),
                      "facets": self._facets(row_probabilities, row_decisions, trained)}  # fmt: skip
            warnings = []
            if trained is not None:
                untrained = [name for name, flag in zip(names, trained) if not flag]
                if untrained:
                    warnings.append(f"{len(untrained)} of {len(names)} label nodes were never trained (no training "
                                    "data labelled them): their predictions are noise")  # fmt: skip
            if face_shares is not None:
                share = float(face_shares[row])
                result["face"] = {"found": share >= MIN_FACE_SHARE, "share": round(share, 4)}
                if share < MIN_FACE_SHARE:
                    warnings.append(f"the parser finds no face (face parts cover {share:.1%} of the image): these "
                                    "predictions describe no face")  # fmt: skip
            if warnings:
                result["warnings"] = warnings
            results.append(result)
        return results

    def post_process_attributes(self, *args, **kwargs) -> list[dict]:
        """The earlier name of `post_process_face_labels`."""
        import warnings

        warnings.warn("`post_process_attributes` is deprecated and will be removed in faceinsight 0.3; use "
                      "`post_process_face_labels`", FutureWarning, stacklevel=2)  # fmt: skip
        return self.post_process_face_labels(*args, **kwargs)

    def _attributes(self, probabilities, decisions, trained) -> dict:
        attributes = {}
        for i, name in enumerate(self.binary_attributes):
            attributes[name] = {"present": bool(decisions[i]), "probability": round(float(probabilities[i]), 4)}
            if trained is not None:
                attributes[name]["trained"] = trained[i]
        return attributes

    def _facets(self, probabilities, decisions, trained) -> dict:
        facets, start = {}, len(self.binary_attributes)
        for facet, values in self.categorical_facets.items():
            span = probabilities[start : start + len(values)]
            chosen = [v for k, v in enumerate(values) if decisions[start + k]]
            normalised = span / span.sum().clamp(min=1e-12)
            value = chosen[0] if chosen else values[int(span.argmax())]
            facets[facet] = {
                "value": value,
                "confidence": round(float(normalised[values.index(value)]), 4),
                "probabilities": {v: round(float(normalised[k]), 4) for k, v in enumerate(values)},
            }
            if trained is not None:
                facets[facet]["trained"] = any(trained[start : start + len(values)])
            start += len(values)
        return facets


_TOKENIZER_KWARGS = {
    "padding",
    "truncation",
    "max_length",
    "pad_to_multiple_of",
    "add_special_tokens",
    "return_attention_mask",
    "padding_side",
    "return_overflowing_tokens",
    "return_length",
    "verbose",
}

__all__ = ["FaceInsightProcessor"]
