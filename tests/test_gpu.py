"""GPU checks: run where CUDA is available (a lent H100/H200); skipped cleanly elsewhere."""

import pytest
import torch

from faceinsight.hub.build import build_tiny

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]


def test_bf16_generation_on_cuda_matches_without_cache(make_inputs):
    model, _ = build_tiny(seed=3)
    model = model.to("cuda", torch.bfloat16)
    inputs = make_inputs(["Smiling?", "Which expression does this face show?"]).to("cuda")
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    with torch.no_grad():
        cached = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False)
        uncached = model.generate(**inputs, max_new_tokens=6, min_new_tokens=6, do_sample=False, use_cache=False)
        predictions = model.predict_face_labels(inputs["pixel_values"])
    assert torch.equal(cached, uncached)
    assert predictions.decisions.device.type == "cuda"


def test_flash_attention_when_installed(tiny_folder, make_inputs):
    pytest.importorskip("flash_attn")
    from faceinsight import FaceInsightForConditionalGeneration

    model = FaceInsightForConditionalGeneration.from_pretrained(
        tiny_folder, attn_implementation="flash_attention_2", dtype=torch.bfloat16
    ).to("cuda")
    inputs = make_inputs(["Smiling?"]).to("cuda")
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    with torch.no_grad():
        out = model(**inputs)
    assert torch.isfinite(out.logits.float()).all()
