"""Peak memory of `faceinsight build` against the bytes of the weights it writes.

Random "pretrained" parts are saved as local folders first, at LLaVA-1.5's vision size (CLIP ViT-L/14-336) and a
Llama LM as large as this machine holds comfortably (default about 1.8 B parameters; `--lm-layers`, `--lm-width` for
more), in bfloat16. Then each build runs in its own process and its peak resident memory (ru_maxrss) is divided by
the size of the model.safetensors files it wrote:

1. `build OUT --from-llava LLAVA --dtype bfloat16`  (a LLaVA-1.5-layout checkpoint of those parts);
2. `build OUT --vision CLIP --text LM --dtype bfloat16`.

The goal (issue 12) is at most 1.3x. The process's own baseline (Python, torch, transformers imported; measured
the same way with `--baseline`) is printed too.

    python benchmarks/bench_build.py [--lm-layers 20 --lm-width 2560] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from bench_model import CLIP_L_14_336 as CLIP_L_336  # the same layouts as the inference benchmark


def _random_bf16(model_class, config):
    """A model of `config` with random bf16 weights, without float32 random initialisation."""
    with torch.device("meta"):
        model = model_class(config)
    model.to_empty(device="cpu")
    model.to(torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            param.copy_(torch.randn(param.shape, generator=generator, dtype=torch.float32) * 0.02)
        for name, buffer in model.named_buffers():
            if "position_ids" in name:
                buffer.copy_(torch.arange(buffer.shape[-1]).expand_as(buffer))
    return model


def write_sources(root: Path, layers: int, width: int) -> dict[str, Path]:
    from transformers import (
        AutoConfig,
        CLIPImageProcessor,
        CLIPVisionModel,
        LlamaForCausalLM,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
    )

    from faceinsight.hub.tokenizer import IMAGE_TOKEN, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(placeholder_tokens=(IMAGE_TOKEN,))
    text = dict(
        hidden_size=width,
        intermediate_size=int(width * 2.6875) // 64 * 64,
        num_hidden_layers=layers,
        num_attention_heads=width // 128,
        num_key_value_heads=width // 128,
        vocab_size=32064,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    vision = AutoConfig.for_model(**CLIP_L_336)
    sources = {"vision": root / "clip", "text": root / "lm", "llava": root / "llava"}
    _random_bf16(CLIPVisionModel, vision).save_pretrained(sources["vision"])
    CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}).save_pretrained(
        sources["vision"]
    )
    lm = _random_bf16(LlamaForCausalLM, AutoConfig.for_model("llama", **text))
    lm.save_pretrained(sources["text"])
    tokenizer.save_pretrained(sources["text"])
    del lm
    llava_config = LlavaConfig(
        vision_config=CLIP_L_336,
        text_config={"model_type": "llama", **text},
        image_token_id=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_layer=-2,
        vision_feature_select_strategy="default",
    )
    _random_bf16(LlavaForConditionalGeneration, llava_config).save_pretrained(sources["llava"])
    LlavaProcessor(
        image_processor=CLIPImageProcessor(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336}),
        tokenizer=tokenizer,
        patch_size=14,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    ).save_pretrained(sources["llava"])
    return sources


def parameters_per_part(folder: Path) -> dict[str, float]:
    """Millions of parameters per top-level part of a written folder (from the safetensors headers alone)."""
    from safetensors import safe_open

    parts: dict[str, float] = {}
    for file in sorted(folder.glob("*.safetensors")):
        with safe_open(file, framework="pt") as handle:
            for key in handle.keys():
                names = key.split(".")
                part = names[1] if names[0] == "model" and len(names) > 2 else names[0]
                shape = handle.get_slice(key).get_shape()
                count = 1
                for size in shape:
                    count *= size
                parts[part] = parts.get(part, 0.0) + count / 1e6
    return parts


def _weights_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lm-layers", type=int, default=20)
    parser.add_argument("--lm-width", type=int, default=2560)
    parser.add_argument("--keep", help="folder to keep sources and outputs in (default: a temporary folder)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench_build_"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"writing random bf16 sources under {root} ...", flush=True)
    sources = write_sources(root, args.lm_layers, args.lm_width)
    baseline, _ = _peak_rss_of_fresh([sys.executable, "-c", "import torch, transformers, faceinsight.hub.assemble"])
    results = {"baseline_process_gb": baseline / 1e9}
    runs = {
        "from_llava": ["--from-llava", str(sources["llava"])],
        "vision_text": ["--vision", str(sources["vision"]), "--text", str(sources["text"])],
    }
    for name, flags in runs.items():
        out = root / f"out_{name}"
        command = [sys.executable, "-m", "faceinsight.commands", "build", str(out), *flags, "--dtype", "bfloat16"]
        command += ["--overwrite"] if out.exists() else []
        peak, seconds = _peak_rss_of_fresh(command)
        written = _weights_bytes(out)
        results[name] = {
            "peak_rss_gb": peak / 1e9,
            "weights_written_gb": written / 1e9,
            "ratio": peak / written,
            "seconds": seconds,
            "parameters_m_per_part": parameters_per_part(out),
        }
        print(
            f"build {name}: peak RSS {peak / 1e9:.2f} GB for {written / 1e9:.2f} GB of bf16 weights written: "
            f"{peak / written:.2f}x ({seconds:.0f} s); a bare process with torch+transformers: {baseline / 1e9:.2f} GB",
            flush=True,
        )
        print(
            "  parameters per part (M): "
            + ", ".join(f"{part} {count:.1f}" for part, count in results[name]["parameters_m_per_part"].items()),
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if not args.keep:
        import shutil

        shutil.rmtree(root)


def _peak_rss_of_fresh(command: list[str]) -> tuple[float, float]:
    """Peak RSS of one command, measured in a fresh wrapper process (ru_maxrss of children is a running maximum)."""
    wrapper = (
        "import resource, subprocess, sys, time, json; t = time.perf_counter(); "
        "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); "
        "print(json.dumps([resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024.0, time.perf_counter() - t]))"
    )
    output = subprocess.run([sys.executable, "-c", wrapper, *command], check=True, capture_output=True, text=True)
    peak, seconds = json.loads(output.stdout)
    return peak, seconds


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
