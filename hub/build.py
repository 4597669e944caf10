"""Building FaceInsight models: the config and processor for given parts, the tiny random preset (offline, for tests
and CPU demos) and its plain-LLaVA twin. Assembly from pretrained checkpoints is in `hub/assemble.py`."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
    PreTrainedTokenizerBase,
)

from faceinsight.hub.tokenizer import IMAGE_TOKEN, PARSING_TOKEN, build_tiny_tokenizer
from faceinsight.modeling.configuration_faceinsight import FaceInsightConfig
from faceinsight.modeling.modeling_faceinsight import FaceInsightForConditionalGeneration
from faceinsight.modeling.schema_faceinsight import (
    DESCRIBE_QUESTIONS,
    DESCRIPTION_PIECE,
    PARSER_LABELS,
    description_text,
    description_vocabulary,
    label_phrase,
)
from faceinsight.processing.image_processing_faceinsight import FaceInsightImageProcessor
from faceinsight.processing.processing_faceinsight import FaceInsightProcessor

logger = logging.getLogger(__name__)

PRESETS_DIR = Path(__file__).with_name("presets")


def load_preset(name: str) -> dict:
    """A preset's sizes from hub/presets/NAME.json (data, not code)."""
    path = PRESETS_DIR / f"{name}.json"
    if not path.is_file():
        known = sorted(p.stem for p in PRESETS_DIR.glob("*.json"))
        raise ValueError(f"unknown preset {name!r}; presets: {', '.join(known)}")
    return {k: v for k, v in json.loads(path.read_text()).items() if not k.startswith("_")}


TINY = load_preset("tiny")
TINY_IMAGE_SIZE, TINY_VISION, TINY_TEXT, TINY_PARSER = TINY["image_size"], TINY["vision"], TINY["text"], TINY["parser"]


def parser_config_kwargs(base: dict | None = None) -> dict:
    """A SegFormer config dict labelled with the 19 CelebAMask-HQ classes."""
    return {**(base or {}), **PARSER_LABELS}


def vision_token_layout(vision_config) -> tuple[int, int, str]:
    """(tokens per image, feature layer, select strategy): CLIP-style towers (with a CLS token) follow LLaVA-1.5
    (penultimate layer, CLS dropped); SigLIP-style towers keep all patch tokens of the last layer."""
    patches = (vision_config.image_size // vision_config.patch_size) ** 2
    if vision_config.model_type.startswith("clip"):
        return patches, -2, "default"
    return patches, -1, "full"


def label_prompt_token_ids(tokenizer: PreTrainedTokenizerBase, prompts: list[str]) -> list[list[int]]:
    return [tokenizer(prompt, add_special_tokens=False)["input_ids"] for prompt in prompts]


# where questions write a label's name ({} is the name, lower-case or capitalised): after a space, or quoted. The
# token holding the character before the name is part of its spelling, so that "male" is not found inside "female"
LABEL_WORD_CONTEXTS = (" {}", " '{}'")


def knowledge_word_token_ids(tokenizer: PreTrainedTokenizerBase, config: FaceInsightConfig) -> list[list[list[int]]]:
    """Per knowledge token (binary attributes, then facets), the token ids of each spelling of its names (an
    attribute's name; each value of a facet) in LABEL_WORD_CONTEXTS: the tokens whose characters lie within the
    name, from the one holding the character before it. A context where a token joins the name to what follows it
    gives no spelling. A slow tokenizer (no character offsets) gives the tokenization of the name after a space."""
    names = [[name] for name in config.binary_attributes] + list(config.categorical_facets.values())
    spellings_per_token = []
    for token_names in names:
        spellings = []
        for name in token_names:
            for word in dict.fromkeys((label_phrase(name), label_phrase(name).capitalize())):
                for context in LABEL_WORD_CONTEXTS if tokenizer.is_fast else (" {}",):
                    ids = _word_ids_in_context(tokenizer, context, word)
                    if ids and ids not in spellings:
                        spellings.append(ids)
        spellings_per_token.append(spellings)
    return spellings_per_token


def _word_ids_in_context(tokenizer, context: str, word: str) -> list[int] | None:
    if not tokenizer.is_fast:
        return tokenizer(context.format(word), add_special_tokens=False)["input_ids"]
    start = context.index("{}") - 1  # the space or quote before the name
    end = start + 1 + len(word)
    encoded = tokenizer(context.format(word), add_special_tokens=False, return_offsets_mapping=True)
    inside = [
        (i, span)
        for i, span in zip(encoded["input_ids"], encoded["offset_mapping"])
        if span[0] < end and span[1] > start
    ]
    if inside and inside[-1][1][1] <= end:
        return [i for i, _ in inside]
    return None


def description_token_ids(tokenizer: PreTrainedTokenizerBase, config: FaceInsightConfig) -> dict | None:
    """What grounded descriptions spell (`config.description_token_ids`): every piece a description of this schema
    can hold, a word with the space before it in context (" {}", as `knowledge_word_token_ids` finds it) or a
    piece standing first, and each trained description question alone and after a space. None where the pieces do
    not decode back to a description's text in this tokenizer (then no description is grounded)."""
    import re

    pieces = {}
    for piece in description_vocabulary(config.binary_attributes, config.categorical_facets):
        spaced = piece.startswith(" ") and tokenizer.is_fast
        ids = _word_ids_in_context(tokenizer, " {}", piece[1:]) if spaced else None
        pieces[piece] = ids or tokenizer(piece, add_special_tokens=False)["input_ids"]
    facets = {facet: values[0] for facet, values in config.categorical_facets.items()}
    sample = description_text({**facets, **dict.fromkeys(config.binary_attributes[:3], 1)}, absences=("Eyeglasses",))
    spelled = [i for piece in re.findall(DESCRIPTION_PIECE, sample) for i in pieces[piece]]
    if tokenizer.decode(spelled) != sample:
        logger.warning("this tokenizer does not spell descriptions piece by piece; descriptions are not grounded")
        return None
    questions = []
    for question in DESCRIBE_QUESTIONS:
        alone = tokenizer(question, add_special_tokens=False)["input_ids"]
        for ids in (alone, _word_ids_in_context(tokenizer, " {}", question) if tokenizer.is_fast else None):
            if ids and ids not in questions:
                questions.append(ids)
    return {"questions": questions, "pieces": pieces}


def make_processor(
    config: FaceInsightConfig, tokenizer, image_size: int, image_mean, image_std, chat_template: str | None = None
) -> FaceInsightProcessor:
    image_processor = FaceInsightImageProcessor(
        size=image_size,
        image_mean=image_mean,
        image_std=image_std,
        num_parsing_labels=config.parser_config.num_labels,
    )
    return FaceInsightProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=chat_template,
        image_token=tokenizer.convert_ids_to_tokens(config.image_token_id),
        parsing_token=PARSING_TOKEN,
        image_seq_length=config.image_seq_length,
        parsing_seq_length=config.parsing_seq_length,
        knowledge_seq_length=config.knowledge_seq_length,
        binary_attributes=config.binary_attributes,
        categorical_facets=config.categorical_facets,
    )


def build_config(vision_config, text_config, parser_config, tokenizer, parsing_seq_length: int, **overrides):
    image_seq_length, feature_layer, strategy = vision_token_layout(vision_config)
    kwargs = dict(
        vision_config=vision_config,
        text_config=text_config,
        parser_config=parser_config,
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        parsing_token_id=tokenizer.convert_tokens_to_ids(PARSING_TOKEN),
        image_seq_length=image_seq_length,
        parsing_seq_length=parsing_seq_length,
        vision_feature_layer=feature_layer,
        vision_feature_select_strategy=strategy,
        parsing_feature_layer=feature_layer,
        parsing_feature_select_strategy=strategy,
        # the map's classes embedded directly and read where they lie (config docs); the colour-rendered map read by
        # a tower is parsing_encoder_type="vision_tower", what folders saved before the field hold
        parsing_encoder_type="label_patches",
        parsing_readout=True,
        knowledge_tokens=True,
        ground_knowledge_words=True,
        knowledge_token_source="decisions",
        grounded_descriptions=True,
    )
    kwargs.update(overrides)
    config = FaceInsightConfig(**kwargs)
    config.label_prompt_token_ids = label_prompt_token_ids(tokenizer, config.label_prompts)
    config.knowledge_word_token_ids = knowledge_word_token_ids(tokenizer, config)
    config.description_token_ids = description_token_ids(tokenizer, config)
    config.validate()
    return config


def build_tiny(seed: int = 0, **config_overrides) -> tuple[FaceInsightForConditionalGeneration, FaceInsightProcessor]:
    """A small random FaceInsight (about 0.6 M parameters) with an offline tokenizer; deterministic for a seed."""
    tokenizer = build_tiny_tokenizer()
    text_config = {
        **TINY_TEXT,
        "vocab_size": len(tokenizer),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }
    vision_config = AutoConfig.for_model(**TINY_VISION)
    config_overrides.setdefault("gcn_hidden_sizes", TINY["gcn_hidden_sizes"])
    config_overrides.setdefault("parsing_map_resolution", TINY["parsing_map_resolution"])
    config = build_config(
        vision_config,
        text_config,
        parser_config_kwargs(TINY_PARSER),
        tokenizer,
        parsing_seq_length=TINY["parsing_seq_length"],
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
        **config_overrides,
    )
    torch.manual_seed(seed)
    model = FaceInsightForConditionalGeneration(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = make_processor(config, tokenizer, TINY_IMAGE_SIZE, config.image_mean, config.image_std)
    return model.eval(), processor


def plain_llava_like(config: FaceInsightConfig, processor: FaceInsightProcessor):
    """(`LlavaForConditionalGeneration`, `LlavaProcessor`) with a FaceInsight config's SigLIP-style tower (all patch
    tokens of the last layer), LM, tokenizer and chat template, random weights: the general-MLLM baseline of the
    same sizes (no parsing, no knowledge modules)."""
    from transformers import LlavaConfig, LlavaForConditionalGeneration, LlavaProcessor, SiglipImageProcessorPil

    vision = config.vision_config
    llava_config = LlavaConfig(
        vision_config=vision.to_dict(),
        text_config=config.text_config.to_dict(),
        image_token_id=config.image_token_id,
        image_seq_length=config.image_seq_length,
        vision_feature_layer=-1,
        vision_feature_select_strategy="full",
    )
    model = LlavaForConditionalGeneration(llava_config)
    model.generation_config.eos_token_id = processor.tokenizer.eos_token_id
    model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
    image_processor = SiglipImageProcessorPil(
        size={"height": vision.image_size, "width": vision.image_size},
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    llava_processor = LlavaProcessor(
        image_processor=image_processor,
        tokenizer=processor.tokenizer,
        patch_size=vision.patch_size,
        vision_feature_select_strategy="full",
        chat_template=processor.chat_template,
    )
    return model, llava_processor


def build_tiny_llava(seed: int = 0):
    """The tiny preset's plain-LLaVA twin (`plain_llava_like`), deterministic for a seed."""
    reference, processor = build_tiny(seed=seed)
    torch.manual_seed(seed)
    model, llava_processor = plain_llava_like(reference.config, processor)
    return model.eval(), llava_processor


__all__ = ["build_tiny", "build_tiny_llava", "plain_llava_like", "build_config", "make_processor"]
