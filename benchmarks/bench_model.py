"""FaceInsight vs transformers' LLaVA: prefill latency, decode speed, peak memory and prefill FLOPs, in one run.

Both models use the same vision config (SigLIP-base/16 at 224 px: 196 image tokens, last layer, all patches), the
same text config (SmolLM2-135M's Llama layout), random weights, the same prompt and image. FaceInsight additionally
runs its parsing branch in prefill (SegFormer-B0 parser, a second SigLIP-base encoding the rendered map, 49 parsing
tokens) and the knowledge head. Each model is measured in its own child process so peak memory is its own.

    python benchmarks/bench_model.py [--device cpu|cuda] [--repeats 5] [--new-tokens 32] [--json out.json]

Prints per-model figures and the FaceInsight/LLaVA ratios; the acceptance checks are
  prefill-time ratio <= 1.1 x prefill-FLOP ratio  (no cost beyond the extra work the parsing branch must do)
  decode tokens/s ratio >= 0.9                    (the parsing branch costs nothing after prefill)
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
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
PARSING_SEQ_LENGTH = 49
IMAGE_TOKENS = 196
QUESTION = "Look at this face. Which facial expression does the person show, how old are they, and are they smiling?"


def build(kind: str, device: str, dtype):
    """(model, inputs) for 'llava' or 'faceinsight' with identical vision/text configs and the same prompt."""
    import torch
    from PIL import Image
    from skimage.data import astronaut
    from transformers import AutoConfig, LlavaConfig, LlavaForConditionalGeneration

    from faceinsight.hub.build import build_config, make_processor, parser_config_kwargs
    from faceinsight.hub.tokenizer import build_tiny_tokenizer
    from faceinsight.modeling.modeling_faceinsight import FaceInsightForConditionalGeneration

    torch.manual_seed(0)
    tokenizer = build_tiny_tokenizer()
    text = {**SMOLLM2_135M, "vocab_size": SMOLLM2_135M["vocab_size"]}
    vision_config = AutoConfig.for_model(**SIGLIP_BASE_16_224)
    config = build_config(vision_config, text, parser_config_kwargs(SEGFORMER_B0), tokenizer, PARSING_SEQ_LENGTH)
    processor = make_processor(config, tokenizer, 224, config.image_mean, config.image_std)
    face = Image.fromarray(astronaut()).crop((140, 20, 340, 220))
    prompt = processor.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}],
        add_generation_prompt=True,
    )
    inputs = processor(images=[face], text=prompt, return_tensors="pt")
    if kind == "faceinsight":
        model = FaceInsightForConditionalGeneration(config)
    else:
        # same prompt with the parsing tokens removed: LLaVA gets exactly the image tokens and the text
        keep = inputs["input_ids"][0] != config.parsing_token_id
        inputs = {
            "input_ids": inputs["input_ids"][:, keep],
            "attention_mask": inputs["attention_mask"][:, keep],
            "pixel_values": inputs["pixel_values"],
        }
        llava_config = LlavaConfig(
            vision_config=vision_config.to_dict(),
            text_config=config.text_config.to_dict(),
            image_token_id=config.image_token_id,
            image_seq_length=IMAGE_TOKENS,
            vision_feature_layer=-1,
            vision_feature_select_strategy="full",
        )
        model = LlavaForConditionalGeneration(llava_config)
    model.generation_config.eos_token_id = None
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model = model.to(device=device, dtype=dtype).eval()
    inputs = {
        k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device)) for k, v in inputs.items()
    }
    return model, inputs


def measure(kind: str, device: str, dtype_name: str, repeats: int, new_tokens: int, queue):
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    torch.set_num_threads(torch.get_num_threads())
    dtype = getattr(torch, dtype_name)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    model, inputs = build(kind, device, dtype)

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def timed(fn):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        return time.perf_counter() - start

    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            model(**inputs, use_cache=True, logits_to_keep=1)
        prefill_flops = counter.get_total_flops()

        def prefill():
            model(**inputs, use_cache=True, logits_to_keep=1)

        def generate(n):
            model.generate(**inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False)

        for _ in range(2):  # warm-up
            prefill()
        generate(2)
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        prefill_times = [timed(prefill) for _ in range(repeats)]
        # decode time: generating 1 + N tokens minus generating 1 token (both include the same prefill)
        decode_times = [timed(lambda: generate(1 + new_tokens)) - timed(lambda: generate(1)) for _ in range(repeats)]
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if device == "cuda"
        else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    )
    queue.put(
        {
            "model": kind,
            "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "prompt_tokens": int(inputs["input_ids"].shape[1]),
            "prefill_gflops": prefill_flops / 1e9,
            "prefill_ms": 1000 * statistics.median(prefill_times),
            "decode_tokens_per_s": new_tokens / statistics.median(decode_times),
            "peak_memory_mib": peak,
        }
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--dtype", default=None, help="float32 (CPU default) or bfloat16 (CUDA default)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    dtype = args.dtype or ("bfloat16" if args.device == "cuda" else "float32")

    context = mp.get_context("spawn")
    results = {}
    for kind in ("llava", "faceinsight"):
        queue = context.Queue()
        process = context.Process(target=measure, args=(kind, args.device, dtype, args.repeats, args.new_tokens, queue))
        process.start()
        results[kind] = queue.get()
        process.join()

    import torch

    print(f"device={args.device} dtype={dtype} threads={torch.get_num_threads()} cpu={platform.processor() or 'n/a'}")
    if args.device == "cuda":
        print(f"gpu={torch.cuda.get_device_name()}")
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
        "prefill time ratio <= 1.1 x FLOP ratio": ratios["time_over_flop_ratio"] <= 1.1,
        "decode tokens/s within 10% of LLaVA": ratios["decode_speed_ratio"] >= 0.9,
    }
    for name, passed in checks.items():
        print(f"{'PASS' if passed else 'FAIL'}: {name}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {"device": args.device, "dtype": dtype, "results": results, "ratios": ratios, "checks": checks},
                handle,
                indent=2,
            )


if __name__ == "__main__":
    main()
