"""The parsing map's encoders: the label-patch encoder new builds get, the rendered-map tower older folders keep, and
the head's spatial read-out of the parsing tokens."""

import json

import pytest
import torch
from huggingface_hub.errors import StrictDataclassClassValidationError, StrictDataclassFieldValidationError

from faceinsight import FaceInsightConfig, FaceInsightForConditionalGeneration
from faceinsight.hub.build import build_tiny
from faceinsight.hub.export import save_model_folder
from faceinsight.modeling.modeling_faceinsight import FaceInsightLabelPatchEncoder

INVALID = (ValueError, StrictDataclassClassValidationError, StrictDataclassFieldValidationError)


def _maps(*boxes, size=64):
    """A background map with (label, top, left, height, width) boxes drawn in order."""
    maps = torch.zeros(1, size, size, dtype=torch.long)
    for label, top, left, height, width in boxes:
        maps[0, top : top + height, left : left + width] = label
    return maps


def test_new_builds_embed_the_maps_classes_and_keep_their_geometry():
    model, _ = build_tiny(seed=0)
    config = model.config
    assert config.parsing_encoder_type == "label_patches" and config.parsing_readout
    encoder = model.model.parsing_encoder
    assert isinstance(encoder, FaceInsightLabelPatchEncoder)
    assert not hasattr(model.model.parsing_encoder, "encoder")  # no transformer layers: one patch embedding
    # same classes in the same amounts, different places: a mouth's corners up or down
    up = _maps((1, 0, 0, 64, 64), (12, 40, 20, 4, 24), (11, 36, 20, 4, 4), (11, 36, 40, 4, 4))
    down = _maps((1, 0, 0, 64, 64), (12, 36, 20, 4, 24), (11, 40, 20, 4, 4), (11, 40, 40, 4, 4))
    assert torch.equal(torch.bincount(up.flatten(), minlength=19), torch.bincount(down.flatten(), minlength=19))
    with torch.no_grad():
        tokens_up, tokens_down = (model.model.get_parsing_features(m, torch.float32) for m in (up, down))
    assert tokens_up.shape == (1, config.parsing_seq_length, config.text_config.hidden_size)
    assert not torch.allclose(tokens_up, tokens_down, atol=1e-4)
    # the shares are pooled, so a map at another resolution reads the same as its nearest-resized copy
    big = torch.nn.functional.interpolate(up[:, None].float(), size=128, mode="nearest")[:, 0].long()
    with torch.no_grad():
        assert torch.allclose(model.model.get_parsing_features(big, torch.float32), tokens_up, atol=1e-5)


def test_label_patches_need_a_square_token_grid_that_divides_the_resolution():
    model, _ = build_tiny(seed=0)
    settings = model.config.to_dict()
    with pytest.raises(INVALID, match="square parsing_seq_length"):
        FaceInsightConfig(**{**settings, "parsing_seq_length": 6})
    with pytest.raises(INVALID, match="divides parsing_map_resolution"):
        FaceInsightConfig(**{**settings, "parsing_map_resolution": 15})
    with pytest.raises(INVALID, match="parsing_encoder_type"):
        FaceInsightConfig(**{**settings, "parsing_encoder_type": "conv"})


def test_folders_saved_before_the_label_patches_keep_the_rendered_map_tower(tmp_path, make_inputs):
    """A config written before the fields existed reads as the tower over the rendered map with no parsing read-out,
    and computes exactly what it computed."""
    old, processor = build_tiny(seed=1, parsing_encoder_type="vision_tower", parsing_readout=False)
    save_model_folder(old, processor, tmp_path)
    config_file = tmp_path / "config.json"
    written = json.loads(config_file.read_text())
    for field in ("parsing_encoder_type", "parsing_map_resolution", "parsing_readout"):
        written.pop(field, None)
    config_file.write_text(json.dumps(written))
    loaded = FaceInsightForConditionalGeneration.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert loaded.config.parsing_encoder_type == "vision_tower" and not loaded.config.parsing_readout
    assert loaded.model.correlation_module.parsing_readout is None
    assert type(loaded.model.parsing_encoder) is type(old.model.parsing_encoder)
    inputs = make_inputs()
    with torch.no_grad():
        before, after = old(**inputs), loaded(**inputs)
    assert torch.equal(before.logits, after.logits)
    assert torch.equal(before.face_label_logits, after.face_label_logits)


def test_parsing_readout_starts_as_the_plain_ccm_and_learns_where_the_tokens_lie(make_inputs):
    model, _ = build_tiny(seed=3)
    plain, _ = build_tiny(seed=3, parsing_readout=False)
    assert plain.model.correlation_module.parsing_readout is None
    inputs = make_inputs()
    maps = _maps((1, 0, 0, 64, 64), (13, 0, 0, 20, 64))
    with torch.no_grad():
        assert torch.allclose(
            model.predict_face_labels(inputs["pixel_values"], maps).logits,
            plain.predict_face_labels(inputs["pixel_values"], maps).logits,
            atol=1e-6,
        )
    smiling = model.config.label_names.index("Smiling")
    labels = torch.full((1, model.config.num_label_nodes), -100.0)
    labels[0, smiling] = 1
    model.train()
    model(**inputs, parsing_maps=maps, face_labels=labels).bce_loss.backward()
    readout = model.model.correlation_module.parsing_readout.grad
    assert readout.shape == (model.config.num_label_nodes, model.config.parsing_seq_length, 64)
    assert readout[smiling].abs().sum(-1).gt(0).all()  # every token position of the labelled node learns
    assert readout[[i for i in range(readout.shape[0]) if i != smiling]].abs().sum() == 0  # unlabelled nodes: nothing
    assert model.model.parsing_encoder.patch_embedding.weight.grad.abs().sum() > 0  # the encoder learns through it
