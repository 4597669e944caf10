"""FaceInsight vs transformers' LLaVA: prefill latency, decode speed, peak memory and prefill FLOPs, in one run.

Both models use the same vision config (SigLIP-base/16 at 224 px: 196 image tokens, last layer, all patches), the
same text config (SmolLM2-135M's Llama layout), random weights, the same prompt and image. FaceInsight additionally
runs its parsing branch in prefill (SegFormer-B0 parser, the parsing-map encoder the builders choose: the map's
classes embedded as label patches, 36 parsing tokens) and the knowledge head, whose 44 knowledge tokens the LM reads
too. Both models are built once, in one process, and measured interleaved (LLaVA,
FaceInsight, LLaVA, ...; medians of each), so noise on a busy machine lands on both alike. Memory: the weights, plus
on CUDA the largest peak above them during the model's own calls.

    python benchmarks/bench_model.py [--device cpu|cuda] [--repeats 5] [--new-tokens 32] [--json out.json]

Prints per-model figures, each part's parameters, prefill FLOPs and prefill time (module hooks over the same timed
calls; "extra LM tokens" is FaceInsight's language model minus LLaVA's), and the FaceInsight/LLaVA ratios; the
acceptance checks (issue 24) are
  prefill-FLOP ratio <= 1.25
  prefill-time ratio <= 1.05 x prefill-FLOP ratio  (no cost beyond the extra work the parsing branch must do)
  decode tokens/s ratio >= 0.97                    (the parsing branch costs nothing after prefill)
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

SIGLIP_BASE_16_224 = dict(
    model_type="siglip_vision_model",
    hidden_size=768,
    intermediate_size=3072,
    num_hidden_layers=12,
    num_attention_heads=12,
    image_size=224,
    patch_size=16,
)
SMOLLM2_135M = dict(
    model_type="llama",
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    max_position_embeddings=8192,
    rope_theta=100000.0,
    tie_word_embeddings=True,
    rms_norm_eps=1e-5,
    vocab_size=49152,
)
SEGFORMER_B0 = dict(
    model_type="segformer",
    hidden_sizes=[32, 64, 160, 256],
    depths=[2, 2, 2, 2],
    num_attention_heads=[1, 2, 5, 8],
    sr_ratios=[8, 4, 2, 1],
    decoder_hidden_size=256,
)
CLIP_L_14_336 = dict(
    model_type="clip_vision_model",
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=24,
    num_attention_heads=16,
    image_size=336,
    patch_size=14,
    projection_dim=768,
)
VICUNA_7B = dict(
    model_type="llama",
    hidden_size=4096,
    intermediate_size=11008,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=32,
    max_position_embeddings=4096,
    tie_word_embeddings=False,
    rms_norm_eps=1e-5,
    vocab_size=32064,
)
# layout: (vision, text, LLaVA feature layer, select strategy, image tokens, parsing tokens)
LAYOUTS = {
    # parsing tokens: the builders' default (`default_parsing_seq_length`); --parsing-tokens for another count
    "base": (SIGLIP_BASE_16_224, SMOLLM2_135M, -1, "full", 196, 36),
    "llava-1.5-7b": (CLIP_L_14_336, VICUNA_7B, -2, "default", 576, 100),  # random weights; for a GPU
}
# the parts reported per model: name -> the modules (under the model) that make it up
PARTS = {
    "llava": {
        "vision tower": ("model.vision_tower",),
        "projector": ("model.multi_modal_projector",),
        "language model": ("model.language_model", "lm_head"),
    },
    "faceinsight": {
        "vision tower": ("model.vision_tower",),
        "projector": ("model.multi_modal_projector",),
        "parser": ("model.parser",),
        "parsing encoder": ("model.parsing_encoder", "model.parsing_projector"),
        "knowledge head": ("model.correlation_module", "model.knowledge_tokens", "model.logic_module"),
        "language model": ("model.language_model", "lm_head"),
    },
}
QUESTION = "Look at this face. Which facial expression does the person show, how old are they, and are they smiling?"


def build(kind: str, device: str, dtype, layout: str = "base", parsing_tokens=None, parsing_encoder="label_patches"):
    """(model, inputs) for 'llava' or 'faceinsight' with identical vision/text configs and the same prompt; the models
    are made on `device` in `dtype` directly (a 7B layout never exists in float32)."""
    import torch
    from PIL import Image
    from skimage.data import astronaut
    from transformers import AutoConfig

    from faceinsight.hub.build import build_config, make_processor, parser_config_kwargs
    from faceinsight.hub.tokenizer import build_tiny_tokenizer

    vision, text, layer, strategy, image_tokens, default_parsing_tokens = LAYOUTS[layout]
    parsing_tokens = parsing_tokens or default_parsing_tokens
    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    vision_config = AutoConfig.for_model(**vision)
    config = build_config(
        vision_config,
        dict(text),
        parser_config_kwargs(SEGFORMER_B0),
        tokenizer,
        parsing_tokens,
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
        parsing_feature_layer=layer,
        parsing_feature_select_strategy=strategy,
        parsing_encoder_type=parsing_encoder,
    )
    assert config.image_seq_length == image_tokens
    processor = make_processor(config, tokenizer, vision["image_size"], config.image_mean, config.image_std)
    face = Image.fromarray(astronaut()).crop((140, 20, 340, 220))
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
        add_generation_prompt=True,
    )
    inputs = processor(images=[face], text=prompt, return_tensors="pt")
    default_dtype = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = _make(kind, config, vision_config, layer, strategy, image_tokens)
    finally:
        torch.set_default_dtype(default_dtype)
    if kind == "llava":
        # same prompt with the parsing tokens removed: LLaVA gets exactly the image tokens and the text
        keep = inputs["input_ids"][0] != config.parsing_token_id
        inputs = {
            "input_ids": inputs["input_ids"][:, keep],
            "attention_mask": inputs["attention_mask"][:, keep],
            "pixel_values": inputs["pixel_values"],
        }
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model = model.to(device=device, dtype=dtype).eval()
    inputs = {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()
    }
    return model, inputs


def _timer(device: str):
    import torch

    def timed(fn, *args):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn(*args)
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    return timed


def _make(kind, config, vision_config, layer, strategy, image_tokens):
    from transformers import LlavaConfig, LlavaForConditionalGeneration

    from faceinsight.modeling.modeling_faceinsight import FaceInsightForConditionalGeneration

    if kind == "faceinsight":
        return FaceInsightForConditionalGeneration(config)
    llava_config = LlavaConfig(
        vision_config=vision_config.to_dict(),
        text_config=config.text_config.to_dict(),
        image_token_id=config.image_token_id,
        image_seq_length=image_tokens,
        vision_feature_layer=layer,
        vision_feature_select_strategy=strategy,
    )
    return LlavaForConditionalGeneration(llava_config)


class PartTimer:
    """Wall time spent inside each part's modules, summed over the calls made while `active` (forward hooks)."""

    def __init__(self, model, parts: dict, device: str):
        import torch

        self.active, self.seconds, self.handles = False, {name: [] for name in parts}, []
        self.current = {}
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        for name, paths in parts.items():
            for path in paths:
                module = model.get_submodule(path) if _has(model, path) else None
                if module is None:
                    continue

                def start(_module, _args, name=name):
                    if self.active:
                        sync()
                        self.current[name] = time.perf_counter()

                def stop(_module, _args, _output, name=name):
                    if self.active and name in self.current:
                        sync()
                        self.spent[name] += time.perf_counter() - self.current.pop(name)

                self.handles += [module.register_forward_pre_hook(start), module.register_forward_hook(stop)]

    def __enter__(self):
        self.active, self.spent = True, {name: 0.0 for name in self.seconds}
        return self

    def __exit__(self, *exc):
        self.active = False
        for name, value in self.spent.items():
            self.seconds[name].append(value)

    def medians_ms(self) -> dict:
        return {name: 1000 * statistics.median(values) for name, values in self.seconds.items() if values}


def _has(model, path: str) -> bool:
    try:
        return model.get_submodule(path) is not None
    except AttributeError:
        return False


def part_figures(kind: str, model, flop_counts: dict, timer: PartTimer) -> dict:
    """Per part: parameters (M), prefill GFLOPs, prefill ms (median)."""
    root = type(model).__name__
    times = timer.medians_ms()
    figures = {}
    for name, paths in PARTS[kind].items():
        present = [path for path in paths if _has(model, path)]
        unique = {id(p): p for path in present for p in model.get_submodule(path).parameters()}  # tied rows once
        params = sum(p.numel() for p in unique.values())
        flops = sum(sum(flop_counts.get(f"{root}.{path}", {}).values()) for path in present)
        figures[name] = {"parameters_m": params / 1e6, "prefill_gflops": flops / 1e9, "prefill_ms": times.get(name)}
    return figures


def measure(
    device: str,
    dtype_name: str,
    repeats: int,
    new_tokens: int,
    layout: str = "base",
    parsing_tokens=None,
    parsing_encoder="label_patches",
) -> dict:
    """Both models built once in this process and measured interleaved (LLaVA, FaceInsight, LLaVA, ...): machine
    noise lands on both alike, and the medians compare like with like."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    dtype = getattr(torch, dtype_name)
    kinds = ("llava", "faceinsight")
    built = {kind: build(kind, device, dtype, layout, parsing_tokens, parsing_encoder) for kind in kinds}
    timed = _timer(device)
    figures = {kind: {"prefill": [], "decode": [], "activation_peak": 0.0} for kind in kinds}
    timers = {kind: PartTimer(built[kind][0], PARTS[kind], device) for kind in kinds}

    def prefill(kind):
        model, inputs = built[kind]
        model(**inputs, use_cache=True, logits_to_keep=1)

    def generate(kind, n):
        model, inputs = built[kind]
        model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)

    with torch.no_grad():
        flops, flop_counts = {}, {}
        for kind in kinds:
            with FlopCounterMode(display=False) as counter:
                prefill(kind)
            flops[kind], flop_counts[kind] = counter.get_total_flops(), counter.get_flop_counts()
            for _ in range(2):  # warm-up
                prefill(kind)
            generate(kind, 2)
        for _ in range(repeats):
            for kind in kinds:
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                    resident = torch.cuda.memory_allocated()
                with timers[kind]:
                    figures[kind]["prefill"].append(timed(prefill, kind))
                # decode time: generating 1 + N tokens minus generating 1 token (both include the same prefill)
                decode = timed(generate, kind, 1 + new_tokens) - timed(generate, kind, 1)
                figures[kind]["decode"].append(decode)
                if device == "cuda":
                    extra = (torch.cuda.max_memory_allocated() - resident) / 2**20
                    figures[kind]["activation_peak"] = max(figures[kind]["activation_peak"], extra)
    results = {}
    for kind in kinds:
        model, inputs = built[kind]
        weights = sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20
        results[kind] = {
            "model": kind,
            "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "prompt_tokens": int(inputs["input_ids"].shape[1]),
            "prefill_gflops": flops[kind] / 1e9,
            "prefill_ms": 1000 * statistics.median(figures[kind]["prefill"]),
            "decode_tokens_per_s": new_tokens / statistics.median(figures[kind]["decode"]),
            # weights plus (on CUDA) the largest activation/cache peak above them during its own calls
            "peak_memory_mib": weights + figures[kind]["activation_peak"],
            "parts": part_figures(kind, model, flop_counts[kind], timers[kind]),
            "parsing_tokens": getattr(model.config, "parsing_seq_length", 0),
        }
    fi, ll = results["faceinsight"]["parts"], results["llava"]["parts"]
    fi["extra LM tokens"] = {
        "parameters_m": 0.0,
        "prefill_gflops": fi["language model"]["prefill_gflops"] - ll["language model"]["prefill_gflops"],
        "prefill_ms": fi["language model"]["prefill_ms"] - ll["language model"]["prefill_ms"],
    }
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default)")
    parser.add_argument(
        "--layout",
        default="base",
        choices=sorted(LAYOUTS),
        help="base: SigLIP-base/16 + SmolLM2-135M; llava-1.5-7b: CLIP ViT-L/14-336 + a 7B Llama (GPU)",
    )
    parser.add_argument("--parsing-tokens", type=int, help="parsing tokens (default: the layout's, the builders')")
    parser.add_argument(
        "--parsing-encoder",
        default="label_patches",
        choices=["label_patches", "vision_tower"],
        help="label_patches (the builders' default) or vision_tower (a second tower reading the rendered map)",
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")

    import torch

    results = measure(
        args.device, dtype, args.repeats, args.new_tokens, args.layout, args.parsing_tokens, args.parsing_encoder
    )

    print(
        f"layout={args.layout} parsing_encoder={args.parsing_encoder} "
        f"parsing_tokens={results['faceinsight']['parsing_tokens']} device={args.device} dtype={dtype} threads={torch.get_num_threads()} cpu={platform.processor() or 'n/a'}"
    )
    if args.device == "cuda":
        print(f"gpu={torch.cuda.get_device_name()}")
    print_table(results)
    print_parts(results)
    ratios, checks = compare(results)
    if args.json:
        with open(args.json, "w") as handle:
            run = {
                "layout": args.layout,
                "parsing_encoder": args.parsing_encoder,
                "parsing_tokens": results["faceinsight"]["parsing_tokens"],
                "device": args.device,
                "dtype": dtype,
            }
            json.dump({**run, "results": results, "ratios": ratios, "checks": checks}, handle, indent=2)


def print_table(results: dict) -> None:
    header = [
        "model",
        "parameters_m",
        "prompt_tokens",
        "prefill_gflops",
        "prefill_ms",
        "decode_tokens_per_s",
        "peak_memory_mib",
    ]
    print(" | ".join(f"{h:>19}" for h in header))
    for row in results.values():
        print(" | ".join(f"{row[h]:>19.1f}" if isinstance(row[h], float) else f"{row[h]:>19}" for h in header))


def print_parts(results: dict) -> None:
    """Each part's parameters, prefill FLOPs and time, and the parsing branch's share of FaceInsight's prefill."""
    for kind, row in results.items():
        print(f"{kind}: part | parameters (M) | prefill GFLOPs | prefill ms")
        for name, part in row["parts"].items():
            ms = "n/a" if part["prefill_ms"] is None else f"{part['prefill_ms']:.1f}"
            print(f"  {name:>16} | {part['parameters_m']:>8.2f} | {part['prefill_gflops']:>8.2f} | {ms:>8}")
    fi = results["faceinsight"]
    branch = ("parser", "parsing encoder", "knowledge head", "extra LM tokens")
    flops = sum(fi["parts"][name]["prefill_gflops"] for name in branch)
    ms = sum(fi["parts"][name]["prefill_ms"] for name in branch)
    print(
        f"parsing branch (parser + parsing encoder + knowledge head + extra LM tokens): {flops:.2f} GFLOPs "
        f"({flops / fi['prefill_gflops']:.1%} of FaceInsight's prefill), {ms:.1f} ms ({ms / fi['prefill_ms']:.1%})"
    )


def compare(results: dict) -> tuple[dict, dict]:
    """FaceInsight / LLaVA ratios and the acceptance checks, printed and returned."""
    fi, ll = results["faceinsight"], results["llava"]
    ratios = {
        "flop_ratio": fi["prefill_gflops"] / ll["prefill_gflops"],
        "prefill_time_ratio": fi["prefill_ms"] / ll["prefill_ms"],
        "decode_speed_ratio": fi["decode_tokens_per_s"] / ll["decode_tokens_per_s"],
        "memory_ratio": fi["peak_memory_mib"] / ll["peak_memory_mib"],
    }
    ratios["time_over_flop_ratio"] = ratios["prefill_time_ratio"] / ratios["flop_ratio"]
    print("FaceInsight / LLaVA: " + ", ".join(f"{k}={v:.3f}" for k, v in ratios.items()))
    checks = {
        "prefill FLOP ratio <= 1.25": ratios["flop_ratio"] <= 1.25,
        "prefill time ratio <= 1.05 x FLOP ratio": ratios["time_over_flop_ratio"] <= 1.05,
        "decode tokens/s >= 0.97 x LLaVA's": ratios["decode_speed_ratio"] >= 0.97,
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}: {name}")
    return ratios, checks


if __name__ == "__main__":
    main()
