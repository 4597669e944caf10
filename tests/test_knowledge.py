import math

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from faceinsight import FaceInsightConfig
from faceinsight.modeling.knowledge_faceinsight import (
    FaceInsightCorrelationConstraintModule,
    FaceInsightLogicalConstraintModule,
    build_correlation_matrix,
    derive_knowledge,
    label_cooccurrence,
    mine_logic_rules,
    most_probable_consistent,
)

TEXT = {
    "model_type": "llama",
    "vocab_size": 100,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 32,
}
BINARY = ["Bald", "Bangs", "Black_Hair", "Blond_Hair", "Smiling", "Goatee", "Male"]
FACETS = {"gender": ["Male", "Female"], "expression": ["Happiness", "Sadness", "Neutral"]}


def test_correlation_matrix_follows_ml_gcn_definition():
    # label 0 occurs 4 times, label 1 co-occurs with it 3 times, label 2 once with 0 (and alone twice)
    labels = torch.tensor([[1, 1, 0], [1, 1, 0], [1, 1, 1], [1, 0, 0], [0, 0, 1], [0, 0, 1]])
    c_hat = build_correlation_matrix(labels, tau=0.5, omega=0.2)
    # p(1|0) = 3/4 >= tau -> edge 0->1; p(2|0) = 1/4 < tau; p(0|1) = 1 -> edge 1->0; p(0|2) = p(1|2) = 1/3 < tau
    assert torch.allclose(c_hat[0], torch.tensor([0.8, 0.2, 0.0]))
    assert torch.allclose(c_hat[1], torch.tensor([0.2, 0.8, 0.0]))
    assert torch.allclose(c_hat[2], torch.tensor([0.0, 0.0, 1.0]))  # no neighbours: keeps its whole weight


def test_correlation_matrix_ignores_masked_samples():
    labels = torch.tensor([[1, 1], [1, 1], [1, 0]])
    mask = torch.tensor([[1, 1], [1, 1], [1, 0]])  # the third sample does not carry label 1
    c_hat = build_correlation_matrix(labels, mask, tau=0.9, omega=0.3)
    assert torch.isclose(c_hat[1, 0], torch.tensor(0.3))  # p(0|1) = 2/2
    # p(1|0) = 2/2 over the samples that carry label 1 (counting the third, where 1 is unknown, gave 2/3)
    assert torch.isclose(c_hat[0, 1], torch.tensor(0.3))
    # counted once and handed over (as derive_knowledge does): the same C_hat
    counts = label_cooccurrence(labels, mask)
    assert torch.equal(build_correlation_matrix(tau=0.9, omega=0.3, counts=counts), c_hat)


def test_mined_rules():
    g = torch.Generator().manual_seed(0)
    bald = torch.rand(400, generator=g) < 0.3
    bangs = (torch.rand(400, generator=g) < 0.5) & ~bald  # never with bald
    goatee = torch.rand(400, generator=g) < 0.2
    male = goatee | (torch.rand(400, generator=g) < 0.4)  # goatee implies male
    labels = torch.stack([bald, bangs, goatee, male], 1).long()
    rules = mine_logic_rules(labels, ["Bald", "Bangs", "Goatee", "Male"], min_support=20)
    assert {"type": "exclusion", "a": "Bald", "b": "Bangs"} in rules
    assert {"type": "implication", "a": "Goatee", "b": "Male"} in rules
    assert {"type": "implication", "a": "Male", "b": "Goatee"} not in rules
    names = ["Bald", "Bangs", "Goatee", "Male"]
    assert mine_logic_rules(None, names, min_support=20, counts=label_cooccurrence(labels)) == rules


def test_knowledge_from_a_mixture_counts_only_where_both_labels_are_known():
    """The paper's protocol: one dataset labels attributes, another the expression. Labels never known together give
    no rule and no edge (not p = 0, which would mine 'Smiling never with Happiness'); within a dataset they do."""
    config = FaceInsightConfig(text_config=TEXT, binary_attributes=BINARY, categorical_facets=FACETS)
    index = {name: i for i, name in enumerate(config.label_names)}
    g = torch.Generator().manual_seed(0)
    rows = []
    for k in range(300):  # attributes only: Goatee implies Male, Bald never with Bangs
        row = [-100] * config.num_label_nodes
        bald, goatee = k % 3 == 0, k % 4 == 0
        values = {"Bald": bald, "Bangs": not bald and k % 2 == 0, "Goatee": goatee, "Male": goatee or k % 5 < 2}
        values.update({name: bool(torch.rand(1, generator=g) < 0.3) for name in ("Black_Hair", "Smiling")})
        for name, value in values.items():
            row[index[name]] = int(value)
        rows.append(row)
    for k in range(300):  # expression only
        row = [-100] * config.num_label_nodes
        for value in FACETS["expression"]:
            row[index[f"expression:{value}"]] = int(value == FACETS["expression"][k % 3])
        rows.append(row)
    knowledge = derive_knowledge(rows, config)
    rules = knowledge["logic_rules"]
    assert {"type": "exclusion", "a": "Bald", "b": "Bangs"} in rules
    assert {"type": "implication", "a": "Goatee", "b": "Male"} in rules
    across = [r for r in rules if (":" in r["a"]) != (":" in r["b"])]
    assert across == [], across  # no attribute-expression rule: never seen together
    c_hat = torch.tensor(knowledge["correlation_matrix"])
    attributes = [index[name] for name in BINARY]
    expressions = [index[f"expression:{value}"] for value in FACETS["expression"]]
    assert c_hat[attributes][:, expressions].abs().sum() == 0 and c_hat[expressions][:, attributes].abs().sum() == 0


def test_adjacency_is_symmetrically_normalised_c_hat():
    c_hat = torch.rand(len(BINARY) + 5, len(BINARY) + 5) + torch.eye(len(BINARY) + 5)
    config = FaceInsightConfig(
        text_config=TEXT, binary_attributes=BINARY, categorical_facets=FACETS, correlation_matrix=c_hat.tolist()
    )
    d = c_hat.sum(1).pow(-0.5)
    adjacency = FaceInsightCorrelationConstraintModule(config).adjacency
    assert torch.allclose(adjacency, d[:, None] * c_hat * d[None, :])


def _config(rules):
    return FaceInsightConfig(
        text_config=TEXT, binary_attributes=BINARY, categorical_facets=FACETS, logic_rules=rules, gcn_hidden_sizes=[8]
    )


def test_gcn_propagates_along_correlation_edges():
    config = _config([])
    n = config.num_label_nodes
    isolated = FaceInsightCorrelationConstraintModule(config)
    matrix = torch.eye(n)
    matrix[0, 1] = matrix[1, 0] = 0.5
    coupled_config = _config([])
    coupled_config.correlation_matrix = matrix.tolist()
    coupled = FaceInsightCorrelationConstraintModule(coupled_config)
    coupled.load_state_dict(isolated.state_dict())
    embeddings = torch.nn.Embedding(100, 16)
    before, after = isolated.label_classifiers(embeddings), coupled.label_classifiers(embeddings)
    assert not torch.allclose(before[0], after[0]) and not torch.allclose(before[1], after[1])
    assert torch.allclose(before[2:], after[2:])  # labels without edges keep their classifiers


def test_logic_loss_is_zero_when_consistent_and_grows_with_violations():
    config = _config(
        [{"type": "exclusion", "a": "Bald", "b": "Bangs"}, {"type": "implication", "a": "Goatee", "b": "Male"}]
    )
    lcm = FaceInsightLogicalConstraintModule(config)
    names = config.label_names
    consistent = torch.zeros(1, len(names))
    for name in ("Bald", "Goatee", "Male", "gender:Male", "expression:Neutral"):
        consistent[0, names.index(name)] = 1.0
    assert lcm.loss(consistent) == 0
    violated = consistent.clone()
    violated[0, names.index("Bangs")] = 1.0
    assert lcm.loss(violated) > 0
    worse = violated.clone()
    worse[0, names.index("Male")] = 0.0
    assert lcm.loss(worse) > lcm.loss(violated)
    probabilities = torch.full((2, len(names)), 0.5, requires_grad=True)
    lcm.loss(probabilities).backward()
    assert probabilities.grad.abs().sum() > 0


rule_strategy = st.lists(
    st.tuples(st.sampled_from(["exclusion", "implication"]), st.integers(0, 11), st.integers(0, 11)),
    max_size=12,
)


@settings(max_examples=150, deadline=None)
@given(rules=rule_strategy, seed=st.integers(0, 10_000))
def test_decisions_never_violate_exclusions_or_one_value_per_facet(rules, seed):
    names = _config([]).label_names
    rule_dicts = [{"type": kind, "a": names[a], "b": names[b]} for kind, a, b in rules if a != b]
    config = _config(rule_dicts)
    lcm = FaceInsightLogicalConstraintModule(config)
    probabilities = torch.rand(4, len(names), generator=torch.Generator().manual_seed(seed))
    decisions = lcm.decide(probabilities)
    for row in decisions:
        for indices in config.facet_label_indices.values():
            assert int(row[indices].sum()) == 1
        for rule in rule_dicts:
            a, b = names.index(rule["a"]), names.index(rule["b"])
            both_categorical = a >= len(BINARY) and b >= len(BINARY)
            if rule["type"] == "exclusion" and not both_categorical:
                assert not (row[a] and row[b]), rule


def test_decisions_repair_implications_at_lowest_cost():
    config = _config([{"type": "implication", "a": "Goatee", "b": "Male"}])
    lcm = FaceInsightLogicalConstraintModule(config)
    names = config.label_names
    p = torch.full((2, len(names)), 0.1)
    p[0, names.index("Goatee")], p[0, names.index("Male")] = 0.95, 0.4  # confident goatee: switch Male on
    p[1, names.index("Goatee")], p[1, names.index("Male")] = 0.55, 0.05  # weak goatee, confident not male: drop it
    decisions = lcm.decide(p)
    assert decisions[0, names.index("Goatee")] and decisions[0, names.index("Male")]
    assert not decisions[1, names.index("Goatee")] and not decisions[1, names.index("Male")]


def test_weak_facet_predictions_do_not_force_confident_attributes():
    """Happiness -> Smiling with expression barely on Happiness and Smiling confidently off: the cheap repair is to
    move the expression facet to its next value, not to switch Smiling on."""
    config = _config([{"type": "implication", "a": "expression:Happiness", "b": "Smiling"}])
    lcm = FaceInsightLogicalConstraintModule(config)
    names = config.label_names
    p = torch.full((2, len(names)), 0.1)
    p[:, names.index("expression:Happiness")] = 0.40
    p[:, names.index("expression:Neutral")] = 0.38
    p[0, names.index("Smiling")] = 0.05  # confident not smiling: move the facet
    p[1, names.index("Smiling")] = 0.45  # nearly smiling, expression sure enough: switch Smiling on
    p[1, names.index("expression:Neutral")] = 0.1
    decisions = lcm.decide(p)
    assert decisions[0, names.index("expression:Neutral")] and not decisions[0, names.index("Smiling")]
    assert decisions[1, names.index("expression:Happiness")] and decisions[1, names.index("Smiling")]


def _log_probability(decisions, p):
    eps = 1e-6
    return sum(math.log(min(max(q if on else 1 - q, eps), 1 - eps)) for on, q in zip(decisions, p))


def _breaks(decisions, exclusions, implications):
    return any(decisions[a] and decisions[b] for a, b in exclusions) or any(
        decisions[a] and not decisions[b] for a, b in implications
    )


@settings(max_examples=300, deadline=None)
@given(
    num_binary=st.integers(0, 5),
    facet_sizes=st.lists(st.integers(2, 3), max_size=2),
    raw_rules=st.lists(st.tuples(st.booleans(), st.integers(0, 10), st.integers(0, 10)), max_size=8),
    p=st.lists(st.floats(0.001, 0.999), min_size=11, max_size=11),
)
def test_exact_decisions_equal_brute_force(num_binary, facet_sizes, raw_rules, p):
    """Against every assignment (binary labels free, one value per facet): the decision is a most probable one that
    breaks no rule, whenever one exists."""
    from itertools import product

    facets, start = [], num_binary
    for size in facet_sizes:
        facets.append(list(range(start, start + size)))
        start += size
    n, p = start, p[:start]
    rules = [(kind, a % n, b % n) for kind, a, b in raw_rules if n and a % n != b % n]
    exclusions = [(a, b) for kind, a, b in rules if kind]
    implications = [(a, b) for kind, a, b in rules if not kind]
    feasible = []
    for bits in product([False, True], repeat=num_binary):
        for values in product(*facets):
            decisions = list(bits) + [False] * (n - num_binary)
            for v in values:
                decisions[v] = True
            if not _breaks(decisions, exclusions, implications):
                feasible.append(_log_probability(decisions, p))
    got = most_probable_consistent(p, num_binary, facets, exclusions, implications)
    for values in facets:
        assert sum(got[v] for v in values) == 1
    if feasible:
        assert not _breaks(got, exclusions, implications)
        assert math.isclose(_log_probability(got, p), max(feasible), rel_tol=1e-9, abs_tol=1e-9)


def test_exact_decisions_on_the_full_schema_with_mined_rules_are_fast_and_consistent():
    """The default schema (40 attributes, 4 facets) with 60 random satisfiable-looking rules on 64 images."""
    config = FaceInsightConfig(text_config=TEXT)
    lcm = FaceInsightLogicalConstraintModule(config)
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.rand(64, config.num_label_nodes, generator=generator)
    exclusions = torch.randint(0, 40, (30, 2), generator=generator)
    implications = torch.randint(0, 40, (30, 2), generator=generator)
    lcm.exclusions = exclusions[exclusions[:, 0] != exclusions[:, 1]]
    lcm.implications = implications[implications[:, 0] != implications[:, 1]]
    decisions = lcm.decide(probabilities)
    rows = decisions.tolist()
    broken = sum(
        _breaks(row, lcm.exclusions.tolist(), lcm.implications.tolist()) for row in rows
    )  # a group with no consistent assignment keeps its unconstrained decisions; none here
    assert broken == 0


def test_write_knowledge_fills_the_config_and_the_buffers_follow():
    """The training run's knowledge step: C_hat and mined rules into the config, the labelled faces counted, the
    modules' buffers rebuilt from it; the no-CCM / no-LCM switches write the identity graph and no rules or L_c."""
    import warnings

    from faceinsight.hub.build import build_tiny
    from faceinsight.modeling.knowledge_faceinsight import write_knowledge
    from faceinsight.training.train import FaceInsightScriptArguments
    from faceinsight.training.train import write_knowledge as deprecated

    model, _ = build_tiny(seed=0)
    names = model.config.label_names
    g = torch.Generator().manual_seed(0)
    rows = (torch.rand(60, len(names), generator=g) < 0.5).long()
    rows[:, names.index("Goatee")] = rows[:, names.index("Male")] * rows[:, names.index("Goatee")]  # goatee -> male
    rows[:10, names.index("Bald")] = -100  # unknown for ten faces
    targets = rows.tolist()
    knowledge = write_knowledge(model, targets, min_support=5)
    assert {"type": "implication", "a": "Goatee", "b": "Male"} in model.config.logic_rules
    assert model.config.correlation_matrix == knowledge["correlation_matrix"]
    assert model.config.labelled_faces[names.index("Bald")] == 50 and model.config.labelled_faces[0] == 60
    c_hat = torch.tensor(knowledge["correlation_matrix"])
    d = c_hat.sum(1).pow(-0.5)
    adjacency = model.model.correlation_module.adjacency
    assert torch.allclose(adjacency, (d[:, None] * c_hat * d[None, :]).to(adjacency.dtype))
    goatee_male = [names.index("Goatee"), names.index("Male")]
    assert goatee_male in model.model.logic_module.implications.tolist()

    ablated, _ = build_tiny(seed=0)
    write_knowledge(ablated, targets, correlation_graph=False, logic_rules=False, min_support=5)
    assert ablated.config.correlation_matrix == torch.eye(len(names)).tolist()
    assert ablated.config.logic_rules == [] and ablated.config.logic_loss_weight == 0.0

    with warnings.catch_warnings(record=True) as caught:  # the earlier name, with the flags of a training run
        warnings.simplefilter("always")
        again, _ = build_tiny(seed=0)
        assert deprecated(again, targets, FaceInsightScriptArguments(min_rule_support=5)) == knowledge
    assert any(issubclass(w.category, FutureWarning) and "write_knowledge" in str(w.message) for w in caught)


def test_helpers_folded_into_their_callers_still_work_with_a_warning(tiny):
    """normalize_adjacency, the model's face_shares and the processor's expand_placeholders were public: they keep
    working for a release, with a FutureWarning, and give what their replacements give."""
    import pytest

    from faceinsight.modeling.knowledge_faceinsight import normalize_adjacency

    model, processor = tiny
    correlation = torch.tensor(model.config.correlation_matrix or torch.eye(model.config.num_label_nodes).tolist())
    with pytest.warns(FutureWarning, match="normalize_adjacency"):
        assert torch.allclose(normalize_adjacency(correlation), model.model.correlation_module.adjacency)
    pixel_values = torch.rand(2, 3, model.config.vision_config.image_size, model.config.vision_config.image_size)
    predictions = model.predict_face_labels(pixel_values)
    with pytest.warns(FutureWarning, match="face_shares"):
        assert torch.equal(model.face_shares(predictions.parsing_maps), predictions.face_shares)
    text = f"Look: {processor.image_token} and {processor.image_token}"
    with pytest.warns(FutureWarning, match="expand_placeholders"):
        expanded = processor.expand_placeholders([text])[0]
    assert expanded == text.replace(processor.image_token, processor.replace_image_token())
    assert processor.image_token * processor.image_seq_length in expanded
