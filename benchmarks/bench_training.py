"""Training throughput: `faceinsight train`'s trainer vs plain TRL SFTTrainer on transformers' LLaVA, in one run.

Both models share the vision and text configs and see the same synthetic faces and conversations, with the same
recipe: vision tower frozen, projector(s) trained, LoRA (r=8) on the LM's attention projections. FaceInsight also
runs its frozen parser and parsing encoder, carries parsing tokens, and trains its knowledge modules with the BCE and
logic losses. All variants are built once in one process and trained step by step interleaved (medians of each), so
noise on a busy machine lands on all alike; a third variant runs FaceInsight's parser on every image at every step
(no maps given) to measure what computing the maps once (`faceinsight parse`, `--parsing_maps_dir`) saves.

    python benchmarks/bench_training.py [--preset small|base] [--steps 30] [--batch-size 4] [--json out.json]

`small` (CPU default): SigLIP-style tower 4x256 at 128 px / 16 px patches (64 image tokens), Llama 4x256.
`base`: SigLIP-base/16 at 224 px and SmolLM2-135M's layout (for a GPU).
Reported: samples/s, tokens/s (all sequence tokens, placeholders included), peak memory, training FLOPs per sample
(torch's FLOP counter over one forward+backward) and FLOP-normalised throughput; the check is that FaceInsight's
FLOP-normalised throughput is within 20% of LLaVA's.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

PRESETS = {
    "small": {
        "vision": {
            "model_type": "siglip_vision_model",
            "hidden_size": 256,
            "intermediate_size": 1024,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "image_size": 128,
            "patch_size": 16,
        },
        "text": {
            "model_type": "llama",
            "hidden_size": 256,
            "intermediate_size": 768,
            "num_hidden_layers": 4,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 2048,
            "tie_word_embeddings": True,
        },
    },
    "base": {
        "vision": {
            "model_type": "siglip_vision_model",
            "hidden_size": 768,
            "intermediate_size": 3072,
            "num_hidden_layers": 12,
            "num_attention_heads": 12,
            "image_size": 224,
            "patch_size": 16,
        },
        "text": {
            "model_type": "llama",
            "hidden_size": 576,
            "intermediate_size": 1536,
            "num_hidden_layers": 30,
            "num_attention_heads": 9,
            "num_key_value_heads": 3,
            "max_position_embeddings": 8192,
            "rope_theta": 100000.0,
            "tie_word_embeddings": True,
        },
    },
}
SEGFORMER_B0 = {
    "model_type": "segformer",
    "hidden_sizes": [32, 64, 160, 256],
    "depths": [2, 2, 2, 2],
    "num_attention_heads": [1, 2, 5, 8],
    "sr_ratios": [8, 4, 2, 1],
    "decoder_hidden_size": 256,
}


def build(kind: str, preset: str, num_faces: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoConfig

    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.hub.build import build_config, make_processor, parser_config_kwargs, plain_llava_like
    from faceinsight.hub.tokenizer import build_tiny_tokenizer
    from faceinsight.training.face_datasets import synthetic_faces
    from faceinsight.training.instructions import to_conversations

    torch.manual_seed(0)
    sizes = PRESETS[preset]
    tokenizer = build_tiny_tokenizer()
    text = {
        **sizes["text"],
        "vocab_size": len(tokenizer),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }
    vision = AutoConfig.for_model(**sizes["vision"])
    patches = (vision.image_size // vision.patch_size) ** 2
    config = build_config(
        vision, text, parser_config_kwargs(SEGFORMER_B0), tokenizer, max(1, patches // 4), gcn_hidden_sizes=[256]
    )
    processor = make_processor(config, tokenizer, vision.image_size, config.image_mean, config.image_std)
    records, _ = synthetic_faces(num_faces, seed=0, size=vision.image_size)
    dataset = to_conversations(records, config, seed=0)
    lora_targets = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj)"
    if kind == "faceinsight":
        model = FaceInsightForConditionalGeneration(config)
        model.freeze("vision_tower", "parser", "parsing_encoder")  # faceinsight train's recipe
        lora = LoraConfig(
            r=8,
            lora_alpha=16,
            target_modules=lora_targets,
            modules_to_save=["multi_modal_projector", "parsing_projector", "correlation_module"],
        )
        return get_peft_model(model, lora), processor, dataset
    model, llava_processor = plain_llava_like(config, processor)
    model.model.vision_tower.requires_grad_(False)
    lora = LoraConfig(r=8, lora_alpha=16, target_modules=lora_targets, modules_to_save=["multi_modal_projector"])
    dataset = dataset.remove_columns(["parsing_map", "face_labels"])
    return get_peft_model(model, lora), llava_processor, dataset


class TokenCounter:
    def __init__(self, collator):
        self.collator, self.tokens, self.samples = collator, 0, 0

    def __call__(self, examples):
        batch = self.collator(examples)
        self.tokens += int(batch["attention_mask"].sum())
        self.samples += len(examples)
        return batch


def make_trainer(kind, model, processor, dataset, steps, batch_size):
    """One SFT recipe for both models; FaceInsight with its own collator. Returns (trainer, token-counting collator)."""
    import torch
    from trl import SFTConfig, SFTTrainer

    from faceinsight.training.trainer import FaceInsightCollator, FaceInsightSFTTrainer

    cuda = torch.cuda.is_available()
    args = SFTConfig(
        output_dir=f"/tmp/bench_training_{kind}",
        max_steps=steps,
        per_device_train_batch_size=batch_size,
        learning_rate=1e-4,
        logging_steps=steps,
        save_strategy="no",
        report_to="none",
        use_cpu=not cuda,
        bf16=cuda,
        remove_unused_columns=False,
        max_length=None,
        dataset_kwargs={"skip_prepare_dataset": True},
        seed=0,
        dataloader_num_workers=0,
    )
    if kind == "faceinsight":
        collator = TokenCounter(FaceInsightCollator(processor))
        trainer = FaceInsightSFTTrainer(
            model=model, args=args, train_dataset=dataset, processing_class=processor, data_collator=collator
        )
    else:
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=processor)
        collator = TokenCounter(trainer.data_collator)
        trainer.data_collator = collator

    return trainer, collator


VARIANTS = {  # name: (model kind, FaceInsight's parsing map source)
    "llava": ("llava", None),
    "faceinsight": ("faceinsight", "dataset"),  # maps given (the dataset's, or computed once by `faceinsight parse`)
    "faceinsight_parser_in_loop": ("faceinsight", "parser"),  # the in-model parser on every image at every step
}


def prepare(kind: str, map_source: str | None, preset: str, steps: int, batch_size: int) -> dict:
    """One variant ready to train: model, trainer, collator, data, optimiser, and its training FLOPs per sample."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from faceinsight.training.trainer import FaceInsightCollator

    model, processor, dataset = build(kind, preset, num_faces=batch_size * (steps + 4))
    trainer, collator = make_trainer(kind, model, processor, dataset, steps, batch_size)
    if map_source is not None:
        collator.collator = FaceInsightCollator(processor, parsing_map_source=map_source)
    model.train()
    batch = {k: v.to(model.device) for k, v in collator([dataset[i] for i in range(batch_size)]).items()}
    with FlopCounterMode(display=False) as counter:
        trainer.compute_loss(model, batch, num_items_in_batch=None).backward()
    model.zero_grad(set_to_none=True)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    flops = counter.get_total_flops() / batch_size
    return dict(model=model, trainer=trainer, collator=collator, dataset=dataset, optimizer=optimizer, flops=flops)


def measure(preset: str, steps: int, batch_size: int) -> dict:
    """Every variant built once in this process, then trained step by step interleaved (LLaVA, FaceInsight, FaceInsight
    with the parser in the loop, LLaVA, ...): a step is collating the batch, forward, backward and the optimiser step;
    medians of each, so machine noise lands on all alike."""
    import torch

    cuda = torch.cuda.is_available()
    runs = {
        name: {**prepare(kind, source, preset, steps, batch_size), "times": [], "peak": 0.0}
        for name, (kind, source) in VARIANTS.items()
    }

    def step(run, index):
        examples = [run["dataset"][(index * batch_size + i) % len(run["dataset"])] for i in range(batch_size)]
        batch = {k: v.to(run["model"].device) for k, v in run["collator"](examples).items()}
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cuda):
            loss = run["trainer"].compute_loss(run["model"], batch, num_items_in_batch=None)
        loss.backward()
        run["optimizer"].step()
        run["optimizer"].zero_grad(set_to_none=True)

    for index in range(steps + 2):  # the first two steps of each are warm-up
        for run in runs.values():
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                resident = torch.cuda.memory_allocated()
            start = time.perf_counter()
            step(run, index)
            if cuda:
                torch.cuda.synchronize()
                run["peak"] = max(run["peak"], (torch.cuda.max_memory_allocated() - resident) / 2**20)
            if index >= 2:
                run["times"].append(time.perf_counter() - start)

    results = {}
    for name, run in runs.items():
        seconds = statistics.median(run["times"])
        tokens = run["collator"].tokens / max(1, run["collator"].samples)
        weights = sum(p.numel() * p.element_size() for p in run["model"].parameters()) / 2**20
        results[name] = {
            "model": name,
            "samples_per_s": batch_size / seconds,
            "tokens_per_s": batch_size * tokens / seconds,
            "tokens_per_sample": tokens,
            "train_gflops_per_sample": run["flops"] / 1e9,
            # weights plus (on CUDA) the largest peak above the resident memory during its own steps
            "peak_memory_mib": weights + run["peak"],
            "trainable_m": sum(p.numel() for p in run["model"].parameters() if p.requires_grad) / 1e6,
        }
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    results = measure(args.preset, args.steps, args.batch_size)
    header = [
        "model",
        "samples_per_s",
        "tokens_per_s",
        "tokens_per_sample",
        "train_gflops_per_sample",
        "peak_memory_mib",
        "trainable_m",
    ]
    print(f"preset={args.preset} steps={args.steps} batch={args.batch_size}")
    print(" | ".join(f"{h:>22}" for h in header))
    for row in results.values():
        print(" | ".join(f"{row[h]:>22.2f}" if isinstance(row[h], float) else f"{row[h]:>22}" for h in header))
    fi, ll = results["faceinsight"], results["llava"]
    ratios = {
        "samples_per_s_ratio": fi["samples_per_s"] / ll["samples_per_s"],
        "tokens_per_s_ratio": fi["tokens_per_s"] / ll["tokens_per_s"],
        "flop_ratio": fi["train_gflops_per_sample"] / ll["train_gflops_per_sample"],
    }
    ratios["flop_normalised_throughput_ratio"] = ratios["samples_per_s_ratio"] * ratios["flop_ratio"]
    print("FaceInsight / LLaVA: " + ", ".join(f"{k}={v:.3f}" for k, v in ratios.items()))
    in_loop = results["faceinsight_parser_in_loop"]
    ratios["parse_once_speedup"] = fi["samples_per_s"] / in_loop["samples_per_s"]
    print(
        f"maps given (parsed once) vs the parser in the training loop: {ratios['parse_once_speedup']:.2f}x samples/s "
        f"({in_loop['train_gflops_per_sample']:.1f} -> {fi['train_gflops_per_sample']:.1f} GFLOP per sample)"
    )
    passed = ratios["flop_normalised_throughput_ratio"] >= 0.8
    print(f"{'PASS' if passed else 'FAIL'}: FLOP-normalised training throughput within 20% of plain TRL LLaVA SFT")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"preset": args.preset, "results": results, "ratios": ratios, "passed": passed}, handle, indent=2)


if __name__ == "__main__":
    main()
