import pytest
import torch

from faceinsight import FaceInsightForConditionalGeneration
from faceinsight.hub.build import build_tiny

RULES = [{"type": "exclusion", "a": "Bald", "b": "Bangs"}, {"type": "implication", "a": "Goatee", "b": "Male"}]


def _face_labels(model, batch, value=1):
    labels = torch.full((batch, model.config.num_label_nodes), -100)
    names = model.config.label_names
    labels[:, names.index("Smiling")] = value
    labels[:, names.index("Eyeglasses")] = 1 - value
    labels[:, [names.index("expression:Happiness"), names.index("expression:Neutral")]] = torch.tensor(
        [value, 1 - value]
    )
    return labels


def _lm_labels(inputs, processor):
    labels = inputs["input_ids"].clone()
    labels[inputs["attention_mask"] == 0] = -100
    labels[(labels == processor.image_token_id) | (labels == processor.parsing_token_id)] = -100
    return labels


def test_forward_returns_total_loss_and_its_parts(tiny, make_inputs):
    model, processor = tiny
    inputs = make_inputs(["Smiling?", "Describe this face."])
    out = model(**inputs, labels=_lm_labels(inputs, processor), face_labels=_face_labels(model, 2))
    c = model.config
    expected = c.lm_loss_weight * out.lm_loss + c.bce_loss_weight * out.bce_loss + c.logic_loss_weight * out.logic_loss
    assert torch.allclose(out.loss, expected)
    assert out.face_label_logits.shape == (2, c.num_label_nodes)
    assert out.logits.shape[:2] == inputs["input_ids"].shape
    assert out.parsing_maps.shape == (2, 64, 64) and int(out.parsing_maps.max()) < 19


def _parts_with_gradients(model):
    return {
        name.split(".")[1]
        for name, p in model.named_parameters()
        if name.startswith("model.") and p.grad is not None and p.grad.abs().sum() > 0
    }


def test_a_model_trains_every_part_unless_frozen(make_inputs, tiny):
    """As LLaVA: a built or loaded model gives gradients to every part (the parser excepted: its output is an
    argmax label map, trained on its own by `faceinsight train-parser`)."""
    _, processor = tiny
    model, _ = build_tiny(seed=1, logic_rules=RULES)
    model.train()
    inputs = make_inputs()
    model(**inputs, labels=_lm_labels(inputs, processor), face_labels=_face_labels(model, 1)).loss.backward()
    assert _parts_with_gradients(model) == {
        "vision_tower",
        "multi_modal_projector",
        "parsing_encoder",
        "parsing_projector",
        "correlation_module",
        "knowledge_tokens",
        "language_model",
    }
    assert all(p.requires_grad for p in model.parameters())


def test_freeze_keeps_frozen_parts_without_gradients_and_in_eval_mode(make_inputs, tiny):
    _, processor = tiny
    model, _ = build_tiny(seed=1, logic_rules=RULES)
    model.freeze("vision_tower", "parsing_encoder", "language_model")
    model.train()
    assert model.training and model.model.multi_modal_projector.training
    for part in ("vision_tower", "parsing_encoder", "language_model", "parser"):
        assert not any(m.training for m in getattr(model.model, part).modules()), part
    parser_statistics = model.model.parser.decode_head.batch_norm.running_mean.clone()
    inputs = make_inputs()
    model(**inputs, labels=_lm_labels(inputs, processor), face_labels=_face_labels(model, 1)).loss.backward()
    trained = {"multi_modal_projector", "parsing_projector", "correlation_module", "knowledge_tokens"}
    assert _parts_with_gradients(model) == trained
    assert model.lm_head.weight.grad is None
    assert torch.equal(model.model.parser.decode_head.batch_norm.running_mean, parser_statistics)
    with pytest.raises(ValueError, match=r"unknown parts \['towers'\]"):
        model.freeze("towers")


def test_each_loss_part_moves_with_its_labels(tiny, make_inputs):
    model, processor = tiny
    inputs = make_inputs()
    lm_labels = _lm_labels(inputs, processor)
    with torch.no_grad():
        base = model(**inputs, labels=lm_labels, face_labels=_face_labels(model, 1, value=1))
        flipped = model(**inputs, labels=lm_labels, face_labels=_face_labels(model, 1, value=0))
        shifted_lm = lm_labels.clone()
        shifted_lm[lm_labels != -100] = (lm_labels[lm_labels != -100] + 7) % model.config.text_config.vocab_size
        other_text = model(**inputs, labels=shifted_lm, face_labels=_face_labels(model, 1, value=1))
        masked = _face_labels(model, 1, value=1)
        masked[:, model.config.label_names.index("Bald")] = -100  # unknown stays unknown whatever the value
        assert torch.equal(base.bce_loss, model(**inputs, face_labels=masked).bce_loss)
    assert base.bce_loss != flipped.bce_loss and torch.equal(base.lm_loss, flipped.lm_loss)
    assert base.lm_loss != other_text.lm_loss and torch.equal(base.bce_loss, other_text.bce_loss)
    # the logic loss constrains predictions; it moves with the rules in the config
    ruled, _ = build_tiny(seed=0, logic_rules=RULES)
    with torch.no_grad():
        assert ruled(**inputs, face_labels=_face_labels(model, 1)).logic_loss != base.logic_loss


def test_bad_face_labels_are_named(tiny, make_inputs):
    model, _ = tiny
    inputs = make_inputs()
    with pytest.raises(ValueError, match=r"face_labels must have shape \(num_images, num_label_nodes\)"):
        model(**inputs, face_labels=torch.zeros(1, 3))
    bad = _face_labels(model, 1)
    bad[0, 0] = 2
    with pytest.raises(ValueError, match="must hold 0, 1 or -100"):
        model(**inputs, face_labels=bad)


def test_placeholder_feature_mismatch_is_a_clear_error(tiny, make_inputs):
    model, _ = tiny
    inputs = make_inputs()
    ids = inputs["input_ids"].clone()
    ids[0, (ids[0] == model.config.image_token_id).nonzero()[0]] = 5  # one image token lost
    with pytest.raises(ValueError, match=r"Image features and image tokens do not match, tokens: 63, features: 64"):
        model(input_ids=ids, pixel_values=inputs["pixel_values"])
    ids = inputs["input_ids"].clone()
    ids[0, (ids[0] == model.config.parsing_token_id).nonzero()[0]] = 5  # one parsing token lost
    follow = model.config.parsing_seq_length + model.config.knowledge_seq_length  # parsing, then knowledge tokens
    match = f"Parsing features and parsing tokens do not match, tokens: {follow - 1}, features: {follow}"
    with pytest.raises(ValueError, match=match):
        model(input_ids=ids, pixel_values=inputs["pixel_values"])


def test_placeholders_without_images_are_ordinary_text(tiny, make_inputs):
    """As LLaVA: without pixel_values the placeholder ids are embedded like any token and the LM reads them."""
    model, _ = tiny
    ids = make_inputs()["input_ids"]
    with torch.no_grad():
        out = model(input_ids=ids)
        plain = model.lm_head(model.model.language_model(input_ids=ids).last_hidden_state)
    assert out.image_outputs is None and torch.equal(out.logits, plain)


def test_parsing_tokens_may_be_left_out_of_the_prompt(tiny, make_inputs):
    """A prompt holding only image placeholders reads the image tokens alone (as a LLaVA prompt would; the prompt
    names no label, so no word is grounded)."""
    model, _ = tiny
    inputs = make_inputs(("Describe this face.",))
    keep = inputs["input_ids"][0] != model.config.parsing_token_id
    ids, mask = inputs["input_ids"][:, keep], inputs["attention_mask"][:, keep]
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, pixel_values=inputs["pixel_values"])
        image_tokens = model.model.get_image_features(inputs["pixel_values"]).pooler_output[0]
        embeds = model.get_input_embeddings()(ids)
        embeds[ids == model.config.image_token_id] = image_tokens
        expected = model(inputs_embeds=embeds, attention_mask=mask).logits
    assert torch.allclose(out.logits, expected, atol=1e-6)


def test_images_reach_the_model_through_inputs_embeds(tiny, make_inputs):
    """Placeholders are found in inputs_embeds too (LLaVA's get_placeholder_mask): same logits as with ids."""
    model, _ = tiny
    inputs = make_inputs()
    with torch.no_grad():
        from_ids = model(**inputs).logits
        embeds = model.get_input_embeddings()(inputs["input_ids"])
        from_embeds = model(
            inputs_embeds=embeds, attention_mask=inputs["attention_mask"], pixel_values=inputs["pixel_values"]
        ).logits
        text_only = model(inputs_embeds=embeds, attention_mask=inputs["attention_mask"]).logits
    assert torch.allclose(from_ids, from_embeds, atol=1e-6)
    assert not torch.allclose(from_embeds, text_only, atol=1e-3)


def test_given_parsing_maps_take_precedence(tiny, make_inputs):
    model, _ = tiny
    inputs = make_inputs(["a", "b"])
    maps = torch.zeros(2, 64, 64, dtype=torch.long)
    maps[0, 20:40, 20:40] = 2
    maps[1] = -1  # the second image is parsed by the model
    with torch.no_grad():
        out = model(**{**inputs, "parsing_maps": maps})
        parsed = model.model.parse_faces(inputs["pixel_values"])
    assert torch.equal(out.parsing_maps[0], maps[0])
    assert torch.equal(out.parsing_maps[1], parsed[1])
    with pytest.raises(ValueError, match=r"valid labels are 0..18"):
        model(**{**inputs, "parsing_maps": torch.full((2, 64, 64), 25)})
    with pytest.raises(ValueError, match=r"parsing_maps must have shape \(num_images, height, width\)"):
        model(**{**inputs, "parsing_maps": torch.zeros(1, 64, 64, dtype=torch.long)})


def test_parsing_map_changes_the_prediction(tiny, make_inputs):
    model, _ = tiny
    inputs = make_inputs()
    skin = torch.ones(1, 64, 64, dtype=torch.long)
    hair = torch.full((1, 64, 64), 13)
    with torch.no_grad():
        a = model.predict_face_labels(inputs["pixel_values"], skin).logits
        b = model.predict_face_labels(inputs["pixel_values"], hair).logits
    assert not torch.allclose(a, b)


def _generate(model, inputs, use_cache):
    return model.generate(**inputs, max_new_tokens=8, do_sample=False, use_cache=use_cache, min_new_tokens=8)


def test_kv_cache_gives_the_same_tokens_for_mixed_prompt_lengths(make_inputs):
    model, _ = build_tiny(seed=3)
    inputs = make_inputs(["Smiling?", "Which expression does this face show, and how old is the person?", "How old?"])
    assert len(set(inputs["attention_mask"].sum(1).tolist())) == 3  # three different prompt lengths
    with torch.no_grad():
        cached, uncached = _generate(model, inputs, True), _generate(model, inputs, False)
    assert cached.shape[1] == inputs["input_ids"].shape[1] + 8
    assert torch.equal(cached, uncached)
    # each row is what it would be alone: padding does not leak into the answer
    single = {
        k: v[1:2, -int(inputs["attention_mask"][1].sum()) :] if k in ("input_ids", "attention_mask") else v[1:2]
        for k, v in inputs.items()
    }
    with torch.no_grad():
        alone = _generate(model, single, True)
    assert torch.equal(alone[0, -8:], cached[1, -8:])


def test_images_go_in_the_first_generation_step_only(tiny, make_inputs):
    model, _ = tiny
    inputs = make_inputs()
    seen = []
    handle = model.model.vision_tower.register_forward_hook(lambda *args: seen.append(1))
    parser_handle = model.model.parser.register_forward_hook(lambda *args: seen.append(2))
    try:
        with torch.no_grad():
            model.generate(**inputs, max_new_tokens=4, min_new_tokens=4, do_sample=False)
    finally:
        handle.remove()
        parser_handle.remove()
    assert seen == [1, 2]


def test_structured_predictions_are_logic_consistent(make_inputs):
    model, _ = build_tiny(seed=4, logic_rules=RULES)
    inputs = make_inputs(["a", "b", "c"])
    predictions = model.predict_face_labels(inputs["pixel_values"])
    names = model.config.label_names
    assert predictions.probabilities.shape == (3, len(names))
    for row in predictions.decisions:
        assert not (row[names.index("Bald")] and row[names.index("Bangs")])
        for indices in model.config.facet_label_indices.values():
            assert int(row[indices].sum()) == 1


def test_eager_and_sdpa_agree(tiny_folder, make_inputs):
    inputs = make_inputs(["Smiling?", "Describe this face please."])
    outputs = {}
    for implementation in ("eager", "sdpa"):
        model = FaceInsightForConditionalGeneration.from_pretrained(tiny_folder, attn_implementation=implementation)
        assert model.config.text_config._attn_implementation == implementation
        with torch.no_grad():
            outputs[implementation] = model(**inputs).logits
    mask = inputs["attention_mask"].bool()
    assert torch.allclose(outputs["eager"][mask], outputs["sdpa"][mask], atol=1e-4)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU error message")
def test_flash_attention_without_cuda_fails_clearly(tiny_folder):
    with pytest.raises((ValueError, ImportError), match="flash"):
        FaceInsightForConditionalGeneration.from_pretrained(tiny_folder, attn_implementation="flash_attention_2")


def test_gradient_checkpointing_trains(make_inputs, tiny):
    _, processor = tiny
    model, _ = build_tiny(seed=5)
    model.gradient_checkpointing_enable()
    model.train()
    inputs = make_inputs()
    out = model(**inputs, labels=_lm_labels(inputs, processor), face_labels=_face_labels(model, 1))
    out.loss.backward()
    assert model.model.language_model.gradient_checkpointing
    assert model.model.language_model.layers[0].mlp.up_proj.weight.grad is not None


def test_save_and_load_round_trip_is_exact_and_safetensors_only(tiny, tiny_folder, make_inputs):
    model, _ = tiny
    files = {p.name for p in tiny_folder.iterdir()}
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth", ".pkl")) for f in files)
    loaded = FaceInsightForConditionalGeneration.from_pretrained(tiny_folder, use_safetensors=True)
    inputs = make_inputs()
    with torch.no_grad():
        before, after = model(**inputs), loaded(**inputs)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.face_label_logits, after.face_label_logits)
    assert torch.equal(model.model.correlation_module.adjacency, loaded.model.correlation_module.adjacency)
    assert all(p.requires_grad for p in loaded.parameters())  # loading never freezes anything


def test_region_readout_averages_tokens_per_parsing_region(tiny):
    model, _ = tiny
    side = int(model.config.image_seq_length**0.5)  # 8 x 8 tokens over a 64 px image: 8 px per token
    features = torch.arange(side * side, dtype=torch.float32).reshape(1, -1, 1).repeat(1, 1, 2)
    maps = torch.zeros(1, 64, 64, dtype=torch.long)
    maps[0, :8, :16] = 13  # hair over the first two tokens of the first row
    maps[0, 8:16, :4] = 1  # skin over half of token 8 (the other half stays background)
    regions, present = model.model.region_pooled_features(features, maps)
    assert present[0].nonzero().flatten().tolist() == [0, 1, 13]
    assert regions[0, 13, 0] == 0.5  # mean of tokens 0 and 1
    assert regions[0, 1, 0] == 8.0  # token 8 alone
    everything_but = [t for t in range(side * side) if t not in (0, 1)]
    expected = (sum(everything_but) - 8 * 0.5) / (len(everything_but) - 0.5)
    assert regions[0, 0, 0].item() == pytest.approx(expected)  # background weighs half of token 8


def test_region_readout_starts_as_the_plain_ccm_and_learns_from_present_regions(make_inputs):
    """A new model's logits equal the plain CCM's; a label's read-out gets gradients for the regions present only."""
    model, _ = build_tiny(seed=3)
    plain, _ = build_tiny(seed=3, region_readout=False)
    assert plain.model.correlation_module.region_readout is None
    inputs = make_inputs()
    maps = torch.ones(1, 64, 64, dtype=torch.long)
    maps[0, :20] = 13
    with torch.no_grad():
        assert torch.allclose(
            model.predict_face_labels(inputs["pixel_values"], maps).logits,
            plain.predict_face_labels(inputs["pixel_values"], maps).logits,
            atol=1e-6,
        )
    labels = torch.full((1, model.config.num_label_nodes), -100.0)
    labels[0, model.config.label_names.index("Blond_Hair")] = 1
    model.train()
    loss = model(**inputs, parsing_maps=maps, face_labels=labels).bce_loss
    loss.backward()
    gradient = model.model.correlation_module.region_readout.grad[model.config.label_names.index("Blond_Hair")]
    assert gradient[13].abs().sum() > 0 and gradient[1].abs().sum() > 0  # regions present
    assert gradient[4].abs().sum() == 0  # an absent region (l_eye) gets nothing


def test_earlier_public_names_still_work_with_a_deprecation_warning(tiny, make_inputs):
    model, processor = tiny
    inputs = make_inputs()
    labels = _face_labels(model, 1)
    with pytest.warns(FutureWarning, match="`attribute_labels` is deprecated"):
        old = model(**inputs, attribute_labels=labels)
    assert torch.equal(old.bce_loss, model(**inputs, face_labels=labels).bce_loss)
    with pytest.warns(FutureWarning, match="`attribute_logits` is deprecated"):
        assert torch.equal(old.attribute_logits, old.face_label_logits)
    with pytest.warns(FutureWarning, match="`predict_attributes` is deprecated"):
        predictions = model.predict_attributes(inputs["pixel_values"])
    with pytest.warns(FutureWarning, match="`post_process_attributes` is deprecated"):
        processor.post_process_attributes(predictions.probabilities, predictions.decisions)
    assert model.config.num_attribute_labels == model.config.num_label_nodes == 65


# -- knowledge tokens: the head's probabilities, read by the LM --------------------------------------------------------
def test_knowledge_tokens_follow_the_parsing_tokens_in_the_lm_input(tiny, make_inputs):
    """Each image's parsing placeholders hold its parsing tokens, then one knowledge token per binary attribute and
    facet: what the language model receives at those positions is exactly those features."""
    model, processor = tiny
    config = model.config
    assert config.knowledge_seq_length == len(config.binary_attributes) + len(config.categorical_facets)
    assert processor.knowledge_seq_length == config.knowledge_seq_length
    inputs = make_inputs(("Is this person smiling?", "How old is this person?"))
    received = {}
    hook = model.model.language_model.register_forward_pre_hook(
        lambda module, args, kwargs: received.update(embeds=kwargs["inputs_embeds"]), with_kwargs=True
    )
    try:
        with torch.no_grad():
            model(**inputs)
            features = model.model.get_image_features(inputs["pixel_values"])
    finally:
        hook.remove()
    for row in range(2):
        positions = (inputs["input_ids"][row] == config.parsing_token_id).nonzero().squeeze(1)
        assert len(positions) == config.parsing_seq_length + config.knowledge_seq_length
        expected = torch.cat([features.parsing_pooler_output[row], features.knowledge_pooler_output[row]])
        assert torch.allclose(received["embeds"][row, positions], expected, atol=1e-6)


def test_each_knowledge_token_moves_with_its_own_label_nodes_only(tiny):
    """Raising one attribute's logit changes that attribute's token alone, by (2 dp) times its evidence vector;
    raising one facet value changes that facet's token alone. The probabilities are read, not trained through."""
    model, _ = tiny
    config, module = model.model.config, model.model.knowledge_tokens
    nodes = module.evidence.detach() * 0 + torch.randn(config.num_label_nodes, config.text_config.hidden_size)
    logits = torch.randn(1, config.num_label_nodes, requires_grad=True)
    with torch.no_grad():
        before = module(logits, nodes)
        raised = logits.detach().clone()
        raised[0, 3] += 2.0
        after = module(raised, nodes)
    changed = (after - before).abs().amax(-1)[0] > 1e-6
    assert changed.tolist() == [k == 3 for k in range(config.knowledge_seq_length)]
    dp = torch.sigmoid(raised[0, 3]) - torch.sigmoid(logits[0, 3].detach())
    assert torch.allclose(after[0, 3] - before[0, 3], 2 * dp * module.evidence[3].detach(), atol=1e-6)

    facet, indices = next(iter(config.facet_label_indices.items()))
    facet_token = len(config.binary_attributes) + list(config.categorical_facets).index(facet)
    with torch.no_grad():
        raised = logits.detach().clone()
        raised[0, indices[0]] += 2.0
        after = module(raised, nodes)
    changed = (after - before).abs().amax(-1)[0] > 1e-6
    assert changed.tolist() == [k == facet_token for k in range(config.knowledge_seq_length)]

    module(logits, nodes).sum().backward()
    assert logits.grad is None


def test_knowledge_teacher_forcing_reads_the_labels_in_training_only(make_inputs):
    """In training with knowledge_teacher_forcing = 1, the knowledge tokens read each face's known labels as certain
    logits (+-8) and the head's own logits where a label is unknown (-100); the head's logits (for its losses) are
    unchanged. At 0, or in eval mode, or without labels, the tokens read the head as before."""
    from faceinsight.hub.build import build_tiny

    model, _ = build_tiny(seed=0)
    config = model.config
    config.knowledge_token_source = (
        "probabilities"  # the head's logits read as they are (decisions: see grounded words)
    )
    inputs = make_inputs(("Is this person smiling?", "How old is this person?"))
    labels = torch.randint(0, 2, (2, config.num_label_nodes)).float()
    labels[0, :5] = -100
    read = []
    hook = model.model.knowledge_tokens.register_forward_pre_hook(lambda module, args: read.append(args[0].detach()))

    def run(training: bool, forcing: float, with_labels: bool = True):
        model.train(training)
        model.model.knowledge_teacher_forcing = forcing
        read.clear()
        outputs = model(**inputs, face_labels=labels if with_labels else None)
        return read[-1], outputs.image_outputs.face_label_logits.detach()

    try:
        forced, head = run(True, 1.0)
        known = labels != -100
        assert torch.equal(forced[known], ((2 * labels - 1) * 8.0)[known])
        assert torch.equal(forced[~known], head[~known])
        for training, forcing, with_labels in ((True, 0.0, True), (False, 1.0, True), (True, 1.0, False)):
            plain, head = run(training, forcing, with_labels)
            assert torch.equal(plain, head), (training, forcing, with_labels)
    finally:
        hook.remove()


def test_without_knowledge_tokens_the_lm_reads_image_and_parsing_tokens_only(make_inputs, face_image):
    """knowledge_tokens=False is the earlier model: no module, no knowledge placeholders, nothing in the output."""
    from helpers import chat_prompt

    model, processor = build_tiny(seed=0, knowledge_tokens=False)
    assert model.model.knowledge_tokens is None and processor.knowledge_seq_length == 0
    inputs = processor(images=[face_image], text=[chat_prompt(processor, "Smiling?")], return_tensors="pt")
    assert int((inputs["input_ids"] == model.config.parsing_token_id).sum()) == model.config.parsing_seq_length
    with torch.no_grad():
        out = model(**inputs)
    assert out.image_outputs.knowledge_pooler_output is None
    assert not any("knowledge" in name for name in model.state_dict())
