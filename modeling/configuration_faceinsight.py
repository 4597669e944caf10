"""FaceInsight configuration: LLaVA's config (vision and text sub-configs, placeholder ids, feature selection) plus
the parsing modality's sub-configs and the knowledge head's label schema, C_hat and rules.

The label schema and its vocabulary (label node, binary attribute, facet, face labels, ...) are defined in
`schema_faceinsight.py`. Validation is split into `validate_*` hooks that `@strict` runs after every construction and
before every save.

This file is uploaded to the Hub as remote code: it imports only `transformers` and same-folder modules.
"""

import copy
import math
from typing import Literal

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec, strict
from transformers.utils import logging

from .schema_faceinsight import (  # noqa: F401 - re-exported: these names used to live here
    AGE_BINS,
    CELEBA_ATTRIBUTES,
    CELEBAMASK_HQ_LABELS,
    CELEBAMASK_HQ_PALETTE,
    DEFAULT_CATEGORICAL_FACETS,
    DEFINITIONAL_RULES,
    FACE_PARTS,
    NUM_PARSING_LABELS,
    PARSER_LABELS,
    RULE_TYPES,
    LabelSpace,
    categorical_node_name,
    default_label_prompt,
    facet_node_indices,
    label_node_names,
)

logger = logging.get_logger(__name__)

LOGIC_RULE_TYPES = RULE_TYPES  # the earlier name
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
KNOWLEDGE_TOKEN_SOURCES = ("probabilities", "decisions")
# Where each Auto class finds its FaceInsight class in a saved folder (remote code). `save_pretrained` writes only
# the entry of the class it saves, so the config carries them all.
_MODEL_CLASS = "modeling_faceinsight.FaceInsightForConditionalGeneration"
AUTO_MAP = {
    "AutoConfig": "configuration_faceinsight.FaceInsightConfig",
    "AutoModel": _MODEL_CLASS,
    "AutoModelForImageTextToText": _MODEL_CLASS,
    "AutoModelForVision2Seq": _MODEL_CLASS,
    "AutoProcessor": "processing_faceinsight.FaceInsightProcessor",
    "AutoImageProcessor": "image_processing_faceinsight.FaceInsightImageProcessor",
}


@strict
class FaceInsightConfig(LabelSpace, PreTrainedConfig):
    r"""
    Configuration of a FaceInsight model: a LLaVA-1.5 style vision-language model with a face-parsing modality and
    the knowledge head (Li et al., "FaceInsight: A Multimodal Large Language Model for Face Perception", 2025).

    Args:
        vision_config: config of the image tower (any transformers vision model, e.g. SigLIP or CLIP vision).
        text_config: config of the causal language model (Llama, Qwen2, SmolLM2, ...).
        parser_config: SegFormer config of the in-model face parser (19 CelebAMask-HQ labels).
        parsing_encoder_config: config of the ViT that encodes the rendered parsing map; defaults to a copy of
            `vision_config` (separate weights, initialisable from the same checkpoint).
        image_token_id / parsing_token_id: ids of the two placeholder tokens the processor expands `<image>` into.
        image_seq_length: image tokens per image (must match the vision tower's selected patch count).
        parsing_seq_length: parsing tokens per image (the parsing encoder's patches are average-pooled to this).
        parser_image_size: the side the in-model parser reads the photo at (resized bilinearly; its map comes back
            at the photo's size). None (the default, as folders saved before it read): the photo's own size. A
            SegFormer's logits are at a quarter of its input, so a parser that must resolve brows and lips on a small
            photo reads it enlarged (`faceinsight train-parser --image_size`, which writes this field).
        parsing_encoder_type: how the parsing map becomes tokens. "vision_tower" (folders saved before this field
            existed): the map rendered in colour at the photo's resolution and read by `parsing_encoder_config`'s
            tower, as a photo would be. "label_patches": the map's classes embedded directly, as a patch embedding
            over their shares: the map is pooled to `parsing_map_resolution` cells a side (each cell the share of
            its pixels per class), cut into a square grid of `parsing_seq_length` patches, and each patch's shares
            are one linear embedding (width `parsing_encoder_config.hidden_size`) plus a learned position. A label
            map has no texture for a tower to read; this keeps its geometry (where the lips, brows and eyes are)
            at a small fraction of a tower's cost.
        parsing_map_resolution: "label_patches" only: cells a side the map is pooled to, a multiple of the patch
            grid's side (default: 4 cells a patch side, e.g. 8 for the tiny preset's 2x2 grid, 28 for 7x7).
        binary_attributes / categorical_facets: the label schema (its label nodes: see schema_faceinsight.py).
        label_prompts / label_prompt_token_ids: per-node text and its token ids (written by the builder, which owns
            the tokenizer); without ids the node inputs are learned embeddings.
        correlation_matrix: the re-weighted label correlation matrix C_hat (N x N, self loops included); identity
            when no label statistics are known. `correlation_tau`/`correlation_omega` record how it was built.
        gcn_hidden_sizes: hidden sizes of the paper's CCM's GCN (output size is the LM width).
        region_readout: add to the CCM's logits a parsing-guided read-out: image tokens averaged within each face
            region of the parsing map, read by a learned vector per (label node, region), zero at initialisation (so
            a new model starts as the plain CCM). Lets Blond_Hair look at the hair, which a mean over all tokens
            cannot.
        parsing_readout: add to the CCM's logits a read-out of the parsing tokens where they lie: each (label node,
            parsing-token position) has a learned vector, zero at initialisation, for that token's (normalised)
            features. The CCM's pooled feature averages the parsing tokens, which keeps what the map holds but not
            where (a mouth's corners up or down, brows raised); this keeps the where. False for folders saved before
            it existed; the builders turn it on.
        knowledge_tokens: let the LM read the knowledge head: after each image's parsing tokens come
            `knowledge_seq_length` knowledge tokens (one per binary attribute, one per facet) that carry the head's
            probabilities (`FaceInsightKnowledgeTokens`). They take parsing placeholders, so no vocabulary row is
            added. False (the default, so folders saved before it existed read as written) gives the LM the image and
            parsing tokens only; the builders turn it on.
        ground_knowledge_words / knowledge_word_token_ids: with knowledge tokens, the prompt's words that name a
            knowledge token's label (per knowledge token, each spelling's token ids: a binary attribute's name, a
            facet's values; written by the builder, which owns the tokenizer), and the prompt after them up to the
            model's answer, carry that token, so the answer to "Does this person have the attribute 'eyeglasses'?"
            starts from what the head perceives about eyeglasses. Off (the default) or without ids, no word is
            grounded; the builders turn it on.
        grounded_descriptions / description_token_ids: asked for a description with a question the model was
            trained on ("Can you give a detailed description of the person in the image?"), generation writes only
            the facts the head decided (`FaceInsightGroundedDescriptions`), in the words training descriptions use;
            the ids are `{"questions": [ids, ...], "pieces": {piece: ids}}`, spelled by the builder, which owns the
            tokenizer. Off (the default) or without ids, a description is generated freely; the builders turn it on.
        knowledge_token_source: what the knowledge tokens carry: "probabilities" (the default: the head's
            probabilities, so the LM also sees how sure the head is) or "decisions" (its logic-consistent decisions,
            as certain as the labels that teacher forcing shows, so an answer reads what the structured prediction
            says).
        logic_rules: the paper's LCM's deterministic relations, each `{"type": "exclusion"|"implication", "a": node,
            "b": node}`. One value per facet is implied by the schema, and DEFINITIONAL_RULES always hold.
        labelled_faces: per label node, the training faces that carried its label, summed over the runs that trained
            the head (0: a node no training data covered, whose predictions are untrained); None: not recorded.
        decision_calibration: `{"scale": [...], "bias": [...]}` per label node, fitted on validation faces after
            training (`fit_decision_calibration`): the probabilities the decisions and `predict_face_labels` give are
            sigmoid(scale * logit + bias), a binary attribute's own Platt scaling, a facet's one temperature and a
            bias per value (for the LCM's search this is the facet's softmax). None (the default): sigmoid(logit).
        lm_loss_weight / bce_loss_weight / logic_loss_weight: weights of the three loss parts.
    """

    model_type = "faceinsight"
    sub_configs_defaults = {
        "vision_config": SubConfigSpec(config_class=AutoConfig, model_type="siglip_vision_model"),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="llama"),
        "parser_config": SubConfigSpec(config_class=AutoConfig, model_type="segformer", init_kwargs=PARSER_LABELS),
        "parsing_encoder_config": SubConfigSpec(
            config_class=AutoConfig, model_type="siglip_vision_model", optional=True
        ),
    }

    vision_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    parser_config: dict | PreTrainedConfig | None = None
    parsing_encoder_config: dict | PreTrainedConfig | None = None

    image_token_id: int | None = None
    parsing_token_id: int | None = None
    image_seq_length: int = 196
    parsing_seq_length: int = 49
    projector_hidden_act: str = "gelu"
    multimodal_projector_bias: bool = True
    vision_feature_layer: int | list[int] = -1
    vision_feature_select_strategy: Literal["default", "full"] = "full"
    parsing_feature_layer: int | list[int] = -1
    parsing_feature_select_strategy: Literal["default", "full"] = "full"
    parser_image_size: int | None = None
    parsing_encoder_type: Literal["vision_tower", "label_patches"] = "vision_tower"
    parsing_map_resolution: int | None = None

    # per-channel normalisation (a single number means the same for the three channels)
    image_mean: list[float | int] | float | None = None
    image_std: list[float | int] | float | None = None
    parser_image_mean: list[float | int] | float | None = None
    parser_image_std: list[float | int] | float | None = None
    parsing_palette: list[list[int]] | None = None
    parsing_render_mean: list[float | int] | float | None = None
    parsing_render_std: list[float | int] | float | None = None

    binary_attributes: list[str] | None = None
    categorical_facets: dict[str, list[str]] | None = None
    categorical_facet_order: list[str] | None = None
    label_prompts: list[str] | None = None
    label_prompt_token_ids: list[list[int]] | None = None
    correlation_matrix: list[list[float | int]] | None = None
    correlation_tau: float | int = 0.4
    correlation_omega: float | int = 0.2
    gcn_hidden_sizes: list[int] | None = None
    gcn_negative_slope: float = 0.2
    region_readout: bool = True
    parsing_readout: bool = False
    knowledge_tokens: bool = False
    ground_knowledge_words: bool = False
    knowledge_token_source: str = "probabilities"
    knowledge_word_token_ids: list[list[list[int]]] | None = None
    grounded_descriptions: bool = False
    description_token_ids: dict | None = None
    logic_rules: list[dict] | None = None
    labelled_faces: list[int] | None = None
    decision_calibration: dict | None = None

    lm_loss_weight: float | int = 1.0
    bce_loss_weight: float | int = 1.0
    logic_loss_weight: float | int = 0.1

    tie_word_embeddings: bool = False

    def __post_init__(self, **kwargs):
        kwargs = _without_legacy_fields(kwargs)
        if isinstance(self.parser_config, dict) and not {"num_labels", "id2label"} & set(self.parser_config):
            self.parser_config = {**PARSER_LABELS, **self.parser_config}  # a parser's labels are the scheme's
        super().__post_init__(**kwargs)
        self.auto_map = {**AUTO_MAP, **(getattr(self, "auto_map", None) or {})}
        if self.parsing_encoder_config is None:
            self.parsing_encoder_config = copy.deepcopy(self.vision_config)
        self.tie_word_embeddings = self.tie_word_embeddings or self.text_config.tie_word_embeddings
        self.image_mean = _per_channel(self.image_mean, (0.5, 0.5, 0.5))
        self.image_std = _per_channel(self.image_std, (0.5, 0.5, 0.5))
        self.parser_image_mean = _per_channel(self.parser_image_mean, IMAGENET_MEAN)
        self.parser_image_std = _per_channel(self.parser_image_std, IMAGENET_STD)
        self.parsing_palette = [list(c) for c in (self.parsing_palette or CELEBAMASK_HQ_PALETTE)]
        self.parsing_render_mean = _per_channel(self.parsing_render_mean, self.image_mean)
        self.parsing_render_std = _per_channel(self.parsing_render_std, self.image_std)
        self._fill_schema()
        if self.image_token_id is None:
            self.image_token_id = self.text_config.vocab_size - 2
        if self.parsing_token_id is None:
            self.parsing_token_id = self.text_config.vocab_size - 1

    def _fill_schema(self):
        self.binary_attributes = list(self.binary_attributes or CELEBA_ATTRIBUTES)
        facets = self.categorical_facets if self.categorical_facets is not None else DEFAULT_CATEGORICAL_FACETS
        # JSON serialisation sorts dict keys, so the facet order (which fixes the label-node order) is kept in a list
        order = self.categorical_facet_order or list(facets)
        if sorted(order) != sorted(facets):
            raise ValueError(f"categorical_facet_order {order} does not name the facets {sorted(facets)}")
        self.categorical_facets = {facet: list(facets[facet]) for facet in order}
        self.categorical_facet_order = list(order)
        if self.label_prompts is None:
            self.label_prompts = [default_label_prompt(name) for name in self.label_names]
        self.gcn_hidden_sizes = [int(size) for size in (self.gcn_hidden_sizes or [1024])]
        self.logic_rules = [dict(rule) for rule in self.logic_rules or []]

    # -- the label space (label_names, num_label_nodes, facet_label_indices, definitional_rules: LabelSpace) ---------
    @property
    def num_attribute_labels(self) -> int:
        """Deprecated name of `num_label_nodes` (it counts every label node, not only the binary attributes)."""
        return self.num_label_nodes

    @property
    def knowledge_seq_length(self) -> int:
        """Knowledge tokens per image: one per binary attribute and one per facet, or 0 when they are off."""
        return len(self.binary_attributes) + len(self.categorical_facets) if self.knowledge_tokens else 0

    @property
    def all_logic_rules(self) -> list[dict]:
        """What the logic module enforces: the definitional rules, then `logic_rules`, without repeats."""
        rules = self.definitional_rules
        return rules + [rule for rule in self.logic_rules if rule not in rules]

    # -- validation: each hook names what is wrong; @strict runs them all after construction and before saving ---
    def validate_label_schema(self):
        names = self.label_names
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"duplicate label names in the schema: {duplicates}")
        for facet, values in self.categorical_facets.items():
            if len(values) < 2:
                raise ValueError(f"categorical facet {facet!r} needs at least 2 values, got {values}")
        if len(self.label_prompts) != len(names):
            raise ValueError(f"label_prompts has {len(self.label_prompts)} entries but the schema has {len(names)}")
        if self.labelled_faces is not None and len(self.labelled_faces) != len(names):
            raise ValueError(f"labelled_faces has {len(self.labelled_faces)} entries but the schema has {len(names)}")
        for key in ("scale", "bias") if self.decision_calibration is not None else ():
            values = self.decision_calibration.get(key)
            if values is None or len(values) != len(names):
                raise ValueError(
                    f"decision_calibration[{key!r}] must hold one number per label node ({len(names)}), got "
                    f"{None if values is None else len(values)}"
                )

    def validate_placeholder_tokens(self):
        vocab_size = self.text_config.vocab_size
        for field in ("image_token_id", "parsing_token_id"):
            token_id = getattr(self, field)
            if not 0 <= token_id < vocab_size:
                raise ValueError(f"{field}={token_id} is outside the language model's vocabulary ({vocab_size})")
        if self.image_token_id == self.parsing_token_id:
            raise ValueError(f"image_token_id and parsing_token_id are both {self.image_token_id}")

    def validate_label_prompt_token_ids(self):
        if self.label_prompt_token_ids is None:
            return
        if len(self.label_prompt_token_ids) != len(self.label_names):
            raise ValueError(
                f"label_prompt_token_ids has {len(self.label_prompt_token_ids)} entries but the schema "
                f"has {len(self.label_names)} labels"
            )
        vocab_size = self.text_config.vocab_size
        for label, ids in zip(self.label_names, self.label_prompt_token_ids):
            if not ids or any(not 0 <= int(i) < vocab_size for i in ids):
                raise ValueError(
                    f"label_prompt_token_ids for {label!r} is empty or has ids outside the vocabulary "
                    f"(vocab_size={vocab_size}): {ids}"
                )

    def validate_knowledge_token_source(self):
        if self.knowledge_token_source not in KNOWLEDGE_TOKEN_SOURCES:
            raise ValueError(
                f"knowledge_token_source={self.knowledge_token_source!r}; expected one of {KNOWLEDGE_TOKEN_SOURCES}"
            )

    def validate_description_token_ids(self):
        if self.description_token_ids is None:
            return
        vocab_size = self.text_config.vocab_size
        spelled = dict(self.description_token_ids.get("pieces") or {})
        spelled.update(
            {f"question {k}": ids for k, ids in enumerate(self.description_token_ids.get("questions") or [])}
        )
        if not spelled:
            raise ValueError("description_token_ids must hold 'questions' and 'pieces' (token ids), or be None")
        for piece, ids in spelled.items():
            if not ids or any(not 0 <= int(i) < vocab_size for i in ids):
                raise ValueError(
                    f"description_token_ids for {piece!r} is empty or has ids outside the vocabulary "
                    f"(vocab_size={vocab_size}): {ids}"
                )

    def validate_knowledge_word_token_ids(self):
        if self.knowledge_word_token_ids is None:
            return
        names = self.binary_attributes + list(self.categorical_facets)  # the knowledge tokens' order
        if len(self.knowledge_word_token_ids) != len(names):
            raise ValueError(
                f"knowledge_word_token_ids has {len(self.knowledge_word_token_ids)} entries but the schema has "
                f"{len(names)} knowledge tokens (binary attributes, then facets)"
            )
        vocab_size = self.text_config.vocab_size
        for name, spellings in zip(names, self.knowledge_word_token_ids):
            if any(not ids or any(not 0 <= int(i) < vocab_size for i in ids) for ids in spellings):
                raise ValueError(
                    f"knowledge_word_token_ids for {name!r} has an empty spelling or ids outside the vocabulary "
                    f"(vocab_size={vocab_size}): {spellings}"
                )

    def validate_correlation_matrix(self):
        if self.correlation_matrix is None:
            return
        size = len(self.label_names)
        if len(self.correlation_matrix) != size or any(len(row) != size for row in self.correlation_matrix):
            lengths = sorted({len(row) for row in self.correlation_matrix})
            raise ValueError(
                f"correlation_matrix must be {size}x{size} (a row and a column per label node), got "
                f"{len(self.correlation_matrix)} rows of lengths {lengths}"
            )
        for i, row in enumerate(self.correlation_matrix):
            for j, value in enumerate(row):
                if not math.isfinite(float(value)) or float(value) < 0:
                    raise ValueError(f"correlation_matrix[{i}][{j}]={value} must be finite and >= 0")

    def validate_correlation_parameters(self):
        if not 0.0 <= self.correlation_tau <= 1.0 or not 0.0 <= self.correlation_omega <= 1.0:
            raise ValueError(
                f"correlation_tau={self.correlation_tau} and correlation_omega="
                f"{self.correlation_omega} must lie in [0, 1]"
            )

    def validate_logic_rules(self):
        known = set(self.label_names)
        for index, rule in enumerate(self.logic_rules):
            if set(rule) != {"type", "a", "b"}:
                raise ValueError(f"logic_rules[{index}]={rule} must have exactly the keys 'type', 'a', 'b'")
            if rule["type"] not in RULE_TYPES:
                raise ValueError(f"logic_rules[{index}] has type {rule['type']!r}; expected one of {RULE_TYPES}")
            for side in ("a", "b"):
                if rule[side] not in known:
                    raise ValueError(
                        f"logic_rules[{index}] names unknown label {rule[side]!r}; labels are the binary "
                        "attributes and 'facet:value' names of the schema"
                    )
            if rule["a"] == rule["b"]:
                raise ValueError(f"logic_rules[{index}] relates {rule['a']!r} to itself")

    def validate_token_counts(self):
        if self.image_seq_length < 1 or self.parsing_seq_length < 1:
            raise ValueError(
                f"image_seq_length={self.image_seq_length} and parsing_seq_length="
                f"{self.parsing_seq_length} must be positive"
            )

    def validate_parsing_encoder(self):
        if self.parsing_encoder_type == "label_patches":
            side = math.isqrt(self.parsing_seq_length)
            if side * side != self.parsing_seq_length or (self.parsing_map_resolution or side) % side:
                raise ValueError(
                    f"parsing_encoder_type='label_patches' needs a square parsing_seq_length (got "
                    f"{self.parsing_seq_length}) whose side divides parsing_map_resolution (got "
                    f"{self.parsing_map_resolution})"
                )

    def validate_parsing_palette(self):
        if len(self.parsing_palette) != self.parser_config.num_labels:
            raise ValueError(
                f"parsing_palette has {len(self.parsing_palette)} colours but the parser has "
                f"{self.parser_config.num_labels} labels"
            )

    def validate_loss_weights(self):
        for name in ("lm_loss_weight", "bce_loss_weight", "logic_loss_weight"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")


def _per_channel(value, default) -> list:
    value = default if value is None else value
    return [value] * 3 if isinstance(value, (int, float)) else list(value)


def _without_legacy_fields(kwargs: dict) -> dict:
    legacy = sorted(key for key in kwargs if key.startswith("freeze_"))
    if legacy:  # configs written before 0.2 stored freezing; it is now the training recipe's choice
        logger.warning_once(
            f"FaceInsightConfig: ignoring {legacy}: freezing is a training choice "
            "(model.freeze(...)), not a model property; a loaded model trains every part"
        )
    return {key: value for key, value in kwargs.items() if key not in legacy}


__all__ = ["FaceInsightConfig"]
