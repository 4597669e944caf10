"""Generation through transformers' own `generate`, the behaviours transformers' GenerationTesterMixin would check
(its file is not in the transformers sdist, see transformers_suite.py): the answer does not depend on the cache
argument's name, the attention implementation, an assistant model, beams or a static (compiled) cache."""

import warnings

import pytest
import torch
from transformers import CompileConfig, DynamicCache

from faceinsight.hub.build import build_tiny

GREEDY = {"max_new_tokens": 8, "min_new_tokens": 8, "do_sample": False}


@pytest.fixture(scope="module")
def model():
    model, _ = build_tiny(seed=3)
    return model


@pytest.fixture
def two_prompts(make_inputs):
    return make_inputs(["Smiling?", "Which expression does this face show, and how old is the person?"])


def _rows(inputs, rows):
    return {key: value[rows] for key, value in inputs.items()}


def test_the_deprecated_past_key_values_name_gives_the_same_answer_and_warns(model, two_prompts):
    cache_config = model.config.get_text_config()
    with torch.no_grad():
        new = model.generate(**two_prompts, cache=DynamicCache(config=cache_config), **GREEDY)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            old = model.generate(**two_prompts, past_key_values=DynamicCache(config=cache_config), **GREEDY)
        forward_new = model(**two_prompts, cache=DynamicCache(config=cache_config)).logits
        forward_old = model(**two_prompts, past_key_values=DynamicCache(config=cache_config)).logits
    assert torch.equal(old, new) and torch.equal(old, model.generate(**two_prompts, **GREEDY))
    assert torch.equal(forward_old, forward_new)
    assert any("`past_key_values` is deprecated" in str(warning.message) for warning in caught)


def test_assisted_decoding_equals_greedy(model, two_prompts):
    """A different (randomly initialised) FaceInsight drafts; greedy verification keeps the main model's answer."""
    assistant, _ = build_tiny(seed=7)
    for row in range(2):
        inputs = _rows(two_prompts, slice(row, row + 1))
        with torch.no_grad():
            assisted = model.generate(**inputs, assistant_model=assistant, **GREEDY)
            greedy = model.generate(**inputs, **GREEDY)
        assert torch.equal(assisted, greedy)


def test_eager_and_sdpa_generate_the_same_answer(tiny_folder, two_prompts):
    from faceinsight import FaceInsightForConditionalGeneration

    answers = []
    for implementation in ("eager", "sdpa"):
        model = FaceInsightForConditionalGeneration.from_pretrained(tiny_folder, attn_implementation=implementation)
        with torch.no_grad():
            answers.append(model.generate(**two_prompts, **GREEDY))
    assert torch.equal(*answers)


def test_beams_and_several_sequences_keep_each_sample_with_its_image(model, two_prompts):
    """generate() repeats each sample per beam; its image, parsing tokens and logits must follow (not the first
    sample's image for every row)."""
    beams = {"num_beams": 3, "num_return_sequences": 2, "max_new_tokens": 6, "min_new_tokens": 6, "do_sample": False}
    with torch.no_grad():
        together = model.generate(**two_prompts, **beams)
        alone = [model.generate(**_rows(two_prompts, slice(row, row + 1)), **beams) for row in range(2)]
    assert together.shape[0] == 4
    for row in range(2):
        assert torch.equal(together[2 * row : 2 * row + 2, -6:], alone[row][:, -6:])


def test_static_cache_gives_the_same_answer(model, two_prompts):
    with torch.no_grad():
        static = model.generate(**two_prompts, cache_implementation="static", **GREEDY)
    assert torch.equal(static, model.generate(**two_prompts, **GREEDY))


@pytest.mark.slow
def test_compiled_decoding_with_a_static_cache_gives_the_same_answer(model, make_inputs):
    """Decoding steps read only the LM and its static cache: they compile with fullgraph=True (about 35 s here)."""
    inputs = make_inputs(["Smiling?"])
    compile_config = CompileConfig(fullgraph=True)
    compile_config._compile_all_devices = True  # generate compiles on accelerators only unless told otherwise
    with torch.no_grad():
        compiled = model.generate(**inputs, cache_implementation="static", compile_config=compile_config, **GREEDY)
    assert torch.equal(compiled, model.generate(**inputs, **GREEDY))


def test_return_dict_false_gives_the_output_as_a_tuple(model, two_prompts):
    with torch.no_grad():
        as_dict = model(**two_prompts)
        as_tuple = model(**two_prompts, return_dict=False)
    assert isinstance(as_tuple, tuple) and torch.equal(as_tuple[0], as_dict.logits)
