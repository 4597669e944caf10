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


def test_bf16_training_steps_on_the_sdpa_flash_kernel(make_inputs):
    """A few bf16 optimiser steps with PyTorch SDPA forced onto its flash-attention kernel (what flash-attn gives,
    without the package): the loss is finite and falls on a repeated batch."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    model, _ = build_tiny(seed=4)
    model = model.to("cuda", torch.bfloat16).train()
    inputs = make_inputs(["Smiling?", "Which expression does this face show?"]).to("cuda")
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    inputs["labels"] = inputs["input_ids"].masked_fill(inputs["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    losses = []
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        for _ in range(5):
            loss = model(**inputs).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            losses.append(loss.item())
    assert all(torch.isfinite(torch.tensor(losses))) and losses[-1] < losses[0], losses


def test_from_llava_build_matches_llava_on_cuda(tmp_path):
    """`build --from-llava` in bfloat16, then both models on the GPU: the same logits without parsing tokens."""
    from PIL import Image
    from test_from_llava import _prompt, make_llava_folder

    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.commands import main

    llava, llava_processor = make_llava_folder(tmp_path / "llava", "clip")
    assert main(["build", str(tmp_path / "fi"), "--from-llava", str(tmp_path / "llava"), "--dtype", "bfloat16"]) == 0
    model = FaceInsightForConditionalGeneration.from_pretrained(tmp_path / "fi").to("cuda").eval()
    llava = llava.to("cuda", torch.bfloat16)
    image = Image.new("RGB", (64, 64), (180, 140, 120))
    inputs = llava_processor(images=[image], text=_prompt(llava_processor), return_tensors="pt").to("cuda")
    inputs["pixel_values"] = inputs["pixel_values"].to(torch.bfloat16)
    with torch.no_grad():
        expected, got = llava(**inputs).logits, model(**inputs).logits
    # bf16: the same weights, and kernels free to order sums differently (0.003 apart on CPU)
    torch.testing.assert_close(got[..., : expected.shape[-1]], expected, atol=2e-2, rtol=2e-2)
