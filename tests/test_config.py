import pytest
from huggingface_hub.errors import StrictDataclassClassValidationError

from faceinsight import FaceInsightConfig
from faceinsight.modeling.schema_faceinsight import CELEBA_ATTRIBUTES, DEFAULT_CATEGORICAL_FACETS

# a config validates itself in `validate_*` hooks, which @strict runs and wraps (the cause's message inside)
INVALID = (ValueError, StrictDataclassClassValidationError)

TEXT = {
    "model_type": "llama",
    "vocab_size": 500,
    "hidden_size": 32,
    "num_hidden_layers": 1,
    "num_attention_heads": 4,
    "intermediate_size": 64,
}


def test_default_schema_covers_the_three_tasks():
    config = FaceInsightConfig(text_config=TEXT)
    names = config.label_names
    assert names[: len(CELEBA_ATTRIBUTES)] == list(CELEBA_ATTRIBUTES)
    assert config.num_label_nodes == 40 + sum(len(v) for v in DEFAULT_CATEGORICAL_FACETS.values())
    assert "expression:Happiness" in names and "age:70+" in names and "race:East Asian" in names
    expression = config.facet_label_indices["expression"]
    assert [names[i] for i in expression] == [f"expression:{v}" for v in DEFAULT_CATEGORICAL_FACETS["expression"]]
    assert config.parser_config.num_labels == 19 and config.parser_config.id2label[13] == "hair"
    assert config.parsing_encoder_config.model_type == config.vision_config.model_type


def test_round_trip_keeps_label_order_and_knowledge(tmp_path):
    facets = {"zeta": ["b", "a"], "alpha": ["y", "x", "w"]}  # deliberately not alphabetical
    n = 2 + 5
    matrix = [[1.0 if i == j else 0.1 * ((i + j) % 3) for j in range(n)] for i in range(n)]
    config = FaceInsightConfig(
        text_config=TEXT,
        binary_attributes=["Smiling", "Bald"],
        categorical_facets=facets,
        correlation_matrix=matrix,
        logic_rules=[{"type": "implication", "a": "Bald", "b": "zeta:a"}],
    )
    config.save_pretrained(tmp_path)
    loaded = FaceInsightConfig.from_pretrained(tmp_path)
    assert (
        loaded.label_names
        == config.label_names
        == ["Smiling", "Bald", "zeta:b", "zeta:a", "alpha:y", "alpha:x", "alpha:w"]
    )
    assert loaded.correlation_matrix == matrix
    assert loaded.logic_rules == config.logic_rules


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"correlation_matrix": [[1.0, 0.0], [0.0, 1.0]]}, "correlation_matrix must be 65x65"),
        ({"logic_rules": [{"type": "exclusion", "a": "Bald", "b": "Unicorn_Horn"}]}, "unknown label 'Unicorn_Horn'"),
        ({"logic_rules": [{"type": "sometimes", "a": "Bald", "b": "Bangs"}]}, "has type 'sometimes'"),
        ({"logic_rules": [{"type": "exclusion", "a": "Bald"}]}, "must have exactly the keys"),
        ({"image_token_id": 500}, "image_token_id=500 is outside the language model's vocabulary"),
        ({"parsing_token_id": -3}, "parsing_token_id=-3 is outside"),
        ({"image_token_id": 7, "parsing_token_id": 7}, "are both 7"),
        ({"categorical_facets": {"gender": ["Male"]}}, "needs at least 2 values"),
        ({"binary_attributes": ["Smiling", "Smiling"]}, "duplicate label names"),
        ({"correlation_tau": 1.5}, "must lie in [0, 1]"),
        ({"label_prompt_token_ids": [[1]] * 3}, "label_prompt_token_ids has 3 entries"),
    ],
)
def test_invalid_configs_say_what_is_wrong(kwargs, message):
    with pytest.raises(INVALID, match=message.replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        FaceInsightConfig(text_config=TEXT, **kwargs)


def test_negative_correlation_entry_is_named():
    n = FaceInsightConfig(text_config=TEXT).num_label_nodes
    matrix = [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]
    matrix[3][5] = -0.2
    with pytest.raises(INVALID, match=r"correlation_matrix\[3\]\[5\]=-0.2"):
        FaceInsightConfig(text_config=TEXT, correlation_matrix=matrix)
