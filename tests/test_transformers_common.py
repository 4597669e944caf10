"""transformers' own common model and config tests (`ModelTesterMixin`, `ConfigTester`) run against FaceInsight,
with a tester modelled on transformers' `tests/models/llava/test_modeling_llava.py`.

The test files come from the transformers source distribution of the installed version, fetched at test time
(`transformers_suite.py`); nothing of them is copied here. Every skip below names LLaVA's reason or ours.
"""

import copy
import unittest
from unittest import mock

import pytest
import torch
from transformers.models.auto.modeling_auto import MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, MODEL_MAPPING_NAMES

from faceinsight import FaceInsightConfig, FaceInsightForConditionalGeneration, FaceInsightModel
from transformers_suite import import_common

try:
    common = import_common("test_modeling_common")
    ConfigTester = import_common("test_configuration_common").ConfigTester
    GenerationTesterMixin = import_common("generation.test_utils").GenerationTesterMixin
except Exception as error:  # offline, or the package index unreachable: say so instead of failing to collect
    pytest.skip(
        f"transformers' common tests could not be fetched from the package index: {error}", allow_module_level=True
    )

IMAGE_TOKEN_ID, PARSING_TOKEN_ID = 0, 3
# a small schema keeps the knowledge modules small: 3 binary attributes and 2 categorical facets
SCHEMA = dict(
    binary_attributes=["Eyeglasses", "Male", "Smiling"],
    categorical_facets={"gender": ["Male", "Female"], "expression": ["Happiness", "Neutral", "Anger"]},
)


class FaceInsightModelTester:
    """Builds a tiny FaceInsight config and inputs the way LLaVA's tester builds LLaVA's: `<image>` already expanded
    into its image tokens, followed here by the parsing placeholders (its parsing tokens, then its knowledge tokens:
    one per binary attribute and facet of SCHEMA)."""

    def __init__(self, parent):
        self.parent = parent
        self.text_config = dict(
            model_type="llama",
            vocab_size=99,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            intermediate_size=37,
            hidden_act="gelu",
            max_position_embeddings=512,
            pad_token_id=1,
        )
        self.vision_config = dict(
            model_type="siglip_vision_model",
            image_size=8,
            patch_size=2,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=4,
            intermediate_size=37,
        )
        self.parser_config = dict(
            model_type="segformer",
            num_encoder_blocks=2,
            depths=[1, 1],
            sr_ratios=[2, 1],
            hidden_sizes=[8, 16],
            num_attention_heads=[1, 2],
            patch_sizes=[3, 3],
            strides=[2, 2],
            mlp_ratios=[2, 2],
            decoder_hidden_size=16,
        )
        self.num_image_tokens, self.num_parsing_tokens = 16, 4
        self.num_knowledge_tokens = len(SCHEMA["binary_attributes"]) + len(SCHEMA["categorical_facets"])
        self.batch_size, self.num_channels, self.image_size = 3, 3, 8
        self.pad_token_id = 1
        self.num_hidden_layers, self.vocab_size, self.hidden_size = 2, 99, 32
        self.num_attention_heads = 4
        self.is_training = True
        self.seq_length = 7 + self.num_image_tokens + self.num_parsing_tokens + self.num_knowledge_tokens
        self.encoder_seq_length = self.seq_length

    def get_config(self):
        config = FaceInsightConfig(
            vision_config=self.vision_config,
            text_config=self.text_config,
            parser_config=self.parser_config,
            image_token_id=IMAGE_TOKEN_ID,
            parsing_token_id=PARSING_TOKEN_ID,
            image_seq_length=self.num_image_tokens,
            parsing_seq_length=self.num_parsing_tokens,
            gcn_hidden_sizes=[16],
            knowledge_tokens=True,
            **SCHEMA,
        )
        # label prompts as token ids, as the builder writes them (the CCM reads them from the LM's embeddings)
        config.label_prompt_token_ids = [[5 + i, 40 + i] for i in range(config.num_label_nodes)]
        # grounded words, one or two tokens each, so that the random prompts name some of them
        config.ground_knowledge_words = True
        config.knowledge_token_source = "decisions"  # as the builders write it: the LCM decides in every forward
        config.knowledge_word_token_ids = [[[10 + i], [60 + i, 61 + i]] for i in range(config.knowledge_seq_length)]
        return config

    def prepare_config_and_inputs(self):
        size = [self.batch_size, self.num_channels, self.image_size, self.image_size]
        return self.get_config(), common.floats_tensor(size)

    def prepare_config_and_inputs_for_common(self):
        config, pixel_values = self.prepare_config_and_inputs()
        input_ids = common.ids_tensor([self.batch_size, self.seq_length], self.vocab_size - 4) + 4
        input_ids[:, : self.num_image_tokens] = IMAGE_TOKEN_ID
        parsing_end = self.num_image_tokens + self.num_parsing_tokens + self.num_knowledge_tokens
        input_ids[:, self.num_image_tokens : parsing_end] = PARSING_TOKEN_ID
        inputs = {"pixel_values": pixel_values, "input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        return config, inputs


@pytest.mark.filterwarnings("always::FutureWarning")  # test_bc_cache_name_forward looks for the deprecation warning
class FaceInsightModelTest(common.ModelTesterMixin, GenerationTesterMixin, unittest.TestCase):
    all_model_classes = (FaceInsightModel, FaceInsightForConditionalGeneration)
    _is_composite = True
    # the check applies to models added from 2023 on; FaceInsight (2026) is one, but its file has no copyright year
    test_can_init_all_missing_weights_before_2023 = True

    def setUp(self):
        # transformers' tests find a model's base and head classes by name in the library's static mappings, where
        # LLaVA is listed ("llava": "LlavaModel" / "LlavaForConditionalGeneration"); a remote-code model is not, so
        # FaceInsight is listed the same way for the duration of each test
        for mapping, name in (
            (MODEL_MAPPING_NAMES, "FaceInsightModel"),
            (MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES, "FaceInsightForConditionalGeneration"),
        ):
            patcher = mock.patch.dict(mapping, {"faceinsight": name})
            patcher.start()
            self.addCleanup(patcher.stop)
        self.model_tester = FaceInsightModelTester(self)
        common_properties = ["image_token_id", "parsing_token_id", "vision_feature_layer", "image_seq_length"]
        self.config_tester = ConfigTester(
            self, config_class=FaceInsightConfig, has_text_modality=False, common_properties=common_properties
        )

    def test_config(self):
        self.config_tester.run_common_tests()

    def test_mismatching_num_image_tokens(self):
        """As LLaVA's test: fewer images than placeholder groups is an error, one image per group is not."""
        config, inputs = self.model_tester.prepare_config_and_inputs_for_common()
        for model_class in self.all_model_classes:
            model = model_class(config).eval()
            model(**copy.deepcopy(inputs))
            with self.assertRaises((RuntimeError, ValueError)):
                model(**{**inputs, "pixel_values": inputs["pixel_values"][-1:]})
            input_ids = torch.cat([inputs["input_ids"][:1]] * 2)
            with self.assertRaises((RuntimeError, ValueError)):
                model(input_ids=input_ids, pixel_values=inputs["pixel_values"][:1])
            model(input_ids=input_ids, pixel_values=torch.cat([inputs["pixel_values"][:1]] * 2))

    @unittest.skip("LLaVA skips it: this architecture does not compute gradients properly with GC (transformers#27124)")
    def test_training_gradient_checkpointing(self):
        pass

    @unittest.skip("LLaVA skips it: this architecture does not compute gradients properly with GC (transformers#27124)")
    def test_training_gradient_checkpointing_use_reentrant_false(self):
        pass

    @unittest.skip("LLaVA skips it: this architecture does not compute gradients properly with GC (transformers#27124)")
    def test_training_gradient_checkpointing_use_reentrant_true(self):
        pass

    @unittest.skip("LLaVA skips it: VLMs need many steps to build pad-free inputs; tested as part of the LLM's tests")
    def test_flash_attention_2_padding_matches_padding_free_with_position_ids(self):
        pass
