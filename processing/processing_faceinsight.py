"""FaceInsight processor: chat template, `<image>` expansion into image + parsing tokens, tokenisation, decoding,
and readable structured predictions.

Uploaded to the Hub as remote code: imports only `torch`, `transformers` and same-folder modules. It never imports
the modeling code; token strings, sequence lengths and the facet schema come from its own saved attributes.
"""

import warnings

import torch
from transformers.processing_utils import ProcessorMixin

# A parsing map whose face parts (skin, nose, eyes, brows, mouth, lips) cover less than this share of its pixels
# shows no face the parser can see: predictions for it are flagged, not hidden.
MIN_FACE_SHARE = 0.02

# ChatML; the assistant's turns inside {% generation %} so that `return_assistant_tokens_mask` (TRL's
# assistant_only_loss) finds the answers
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' }}"
    "{% set turn = namespace(text='') %}"
    "{% if message['content'] is string %}{% set turn.text = message['content'] %}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}{% set turn.text = turn.text + '<image>' %}"
    "{% elif item['type'] == 'text' %}{% set turn.text = turn.text + item['text'] %}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% if message['role'] == 'assistant' %}"
    "{% generation %}{{ turn.text + '<|im_end|>\n' }}{% endgeneration %}"
    "{% else %}{{ turn.text + '<|im_end|>\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class FaceInsightProcessor(ProcessorMixin):
    """LLaVA's processor with the parsing modality: `ProcessorMixin` does the work (kwargs merging, the image
    processor, placeholder counting, tokenising, the truncation check); FaceInsight writes the hooks.

    Each `<image>` in the text stands for one image and becomes `image_seq_length` image tokens followed by
    `parsing_seq_length + knowledge_seq_length` parsing placeholders (`replace_image_token`); the model scatters its
    image tokens, then each image's parsing tokens and knowledge tokens, into those positions. `parsing_maps=` (one
    per image, None to let the model parse) goes to the image processor. The label schema in the saved attributes
    reads structured predictions (`post_process_face_labels`).
    """

    text_kwargs = {"return_token_type_ids": False}  # the tokenizer's defaults for this processor

    def __init__(
        self,
        image_processor=None,
        tokenizer=None,
        chat_template=None,
        image_token: str = "<image>",
        parsing_token: str = "<parsing>",
        image_seq_length: int = 196,
        parsing_seq_length: int = 49,
        knowledge_seq_length: int = 0,
        binary_attributes: list[str] | None = None,
        categorical_facets: dict[str, list[str]] | None = None,
        categorical_facet_order: list[str] | None = None,
        **kwargs,
    ):
        self.image_token = image_token
        self.parsing_token = parsing_token
        self.image_seq_length = int(image_seq_length)
        self.parsing_seq_length = int(parsing_seq_length)
        self.knowledge_seq_length = int(knowledge_seq_length)
        self.binary_attributes = list(binary_attributes or [])
        categorical_facets = categorical_facets or {}
        # saved JSON sorts dict keys; the facet order (which fixes the label columns) travels as a list
        self.categorical_facet_order = list(categorical_facet_order or categorical_facets)
        self.categorical_facets = {facet: list(categorical_facets[facet]) for facet in self.categorical_facet_order}
        self.image_token_id = tokenizer.convert_tokens_to_ids(image_token)
        self.parsing_token_id = tokenizer.convert_tokens_to_ids(parsing_token)
        if self.image_token_id == tokenizer.unk_token_id or self.parsing_token_id == tokenizer.unk_token_id:
            raise ValueError(
                f"the tokenizer does not know {image_token!r} / {parsing_token!r}; add them as special tokens"
            )
        super().__init__(image_processor, tokenizer, chat_template=chat_template or CHATML_TEMPLATE)

    # -- ProcessorMixin's hooks ----------------------------------------------------------------------------------------
    def replace_image_token(self, image_inputs: dict | None = None, image_idx: int = 0, **kwargs) -> str:
        """One `<image>` -> its image tokens, then the placeholders of its parsing and knowledge tokens."""
        return self.image_token * self.image_seq_length + self.parsing_token * (
            self.parsing_seq_length + self.knowledge_seq_length
        )

    def validate_inputs(self, images=None, text=None, videos=None, audio=None, **kwargs):
        if videos is not None or audio is not None:
            raise ValueError("FaceInsight takes images and text only")
        super().validate_inputs(images=images, text=text, videos=videos, audio=audio, **kwargs)
        for index, sample in enumerate([text] if isinstance(text, str) else text or []):
            if self.parsing_token in sample:
                raise ValueError(
                    f"sample {index}: the text holds {self.parsing_token!r}, the reserved parsing placeholder; it "
                    f"cannot appear in text (the processor puts the parsing tokens after each {self.image_token})"
                )

    def _check_special_mm_tokens(self, text, text_inputs, modalities):
        """The truncation check of ProcessorMixin, for the parsing placeholder too."""
        super()._check_special_mm_tokens(text, text_inputs, [*modalities, "parsing"])

    def expand_placeholders(self, texts: list[str]) -> list[str]:
        """Deprecated: each `<image>` replaced by `replace_image_token()`, as the tokenizer sees the texts."""
        warnings.warn(
            "`expand_placeholders` is deprecated and will be removed in faceinsight 0.3; replace the image token "
            "with `replace_image_token()`",
            FutureWarning,
            stacklevel=2,
        )
        return [text.replace(self.image_token, self.replace_image_token()) for text in texts]

    # -- FaceInsight's addition: reading structured predictions -------------------------------------------------------
    @property
    def label_names(self) -> list[str]:
        names = list(self.binary_attributes)
        for facet, values in self.categorical_facets.items():
            names.extend(f"{facet}:{value}" for value in values)
        return names

    def post_process_face_labels(
        self, probabilities: torch.Tensor, decisions: torch.Tensor, trained=None, face_shares=None
    ) -> list[dict]:
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
            result = {
                "attributes": self._attributes(row_probabilities, row_decisions, trained),
                "facets": self._facets(row_probabilities, row_decisions, trained),
            }
            warnings = []
            if trained is not None:
                untrained = [name for name, flag in zip(names, trained) if not flag]
                if untrained:
                    warnings.append(
                        f"{len(untrained)} of {len(names)} label nodes were never trained (no training "
                        "data labelled them): their predictions are noise"
                    )
            if face_shares is not None:
                share = float(face_shares[row])
                result["face"] = {"found": share >= MIN_FACE_SHARE, "share": round(share, 4)}
                if share < MIN_FACE_SHARE:
                    warnings.append(
                        f"the parser finds no face (face parts cover {share:.1%} of the image): these "
                        "predictions describe no face"
                    )
            if warnings:
                result["warnings"] = warnings
            results.append(result)
        return results

    def post_process_attributes(self, *args, **kwargs) -> list[dict]:
        """The earlier name of `post_process_face_labels`."""
        import warnings

        warnings.warn(
            "`post_process_attributes` is deprecated and will be removed in faceinsight 0.3; use "
            "`post_process_face_labels`",
            FutureWarning,
            stacklevel=2,
        )
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


__all__ = ["FaceInsightProcessor"]
