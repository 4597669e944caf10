"""What grounded words and decision tokens cost in training: one forward + backward of the demo's batch.

The tiny preset (the demo's model); one batch of 16 synthetic faces as the demo's four-question conversations,
through FaceInsight's collator. One model in three settings: the builders' (grounded words, knowledge tokens made
from the head's logic-consistent decisions: one exact LCM search per face), grounded with probability tokens, and
plain (no grounded words, probability tokens); measured interleaved (medians), so noise on a busy machine lands on
all alike.

    python benchmarks/bench_grounding.py [--repeats 15] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch


def batch_for(model, processor, faces: int = 16):
    from faceinsight.hub.build import TINY_IMAGE_SIZE
    from faceinsight.training.face_datasets import synthetic_faces
    from faceinsight.training.instructions import to_conversations
    from faceinsight.training.trainer import FaceInsightCollator

    records, _ = synthetic_faces(faces, 0, TINY_IMAGE_SIZE, "train")
    conversations = to_conversations(records, model.config, seed=0)
    return FaceInsightCollator(processor, parsing_map_source="parser")([conversations[i] for i in range(faces)])


def step(model, batch) -> float:
    model.zero_grad(set_to_none=True)
    start = time.perf_counter()
    model(**batch).loss.backward()
    return time.perf_counter() - start


def measure(repeats: int) -> dict:
    from faceinsight.evaluation.structured import targets_of
    from faceinsight.hub.build import TINY_IMAGE_SIZE, build_tiny
    from faceinsight.modeling.knowledge_faceinsight import write_knowledge
    from faceinsight.training.face_datasets import synthetic_faces

    torch.manual_seed(0)
    model, processor = build_tiny(seed=0)
    # the rules a training run mines from the demo's 2,000 faces, so the decisions search what they search there
    write_knowledge(model, targets_of(synthetic_faces(2000, 0, TINY_IMAGE_SIZE)[0], model.config).tolist())
    model.train()
    batch = batch_for(model, processor)
    settings = {  # name: (ground_knowledge_words, knowledge_token_source)
        "decisions": (True, "decisions"),
        "grounded": (True, "probabilities"),
        "plain": (False, "probabilities"),
    }
    times = {name: [] for name in settings}
    for _ in range(2):  # warm-up
        step(model, batch)
    for _ in range(repeats):
        for name, (grounded, source) in settings.items():
            model.config.ground_knowledge_words, model.config.knowledge_token_source = grounded, source
            times[name].append(step(model, batch))
    model.config.ground_knowledge_words, model.config.knowledge_token_source = settings["decisions"]
    medians = {name: statistics.median(values) for name, values in times.items()}
    return {
        "sequence_length": int(batch["input_ids"].shape[1]),
        "spellings": int(model.model.knowledge_tokens.word_ids.shape[0]),
        "rules": len(model.config.logic_rules),
        **{f"{name}_s": round(value, 4) for name, value in medians.items()},
        "grounded_ratio": round(medians["grounded"] / medians["plain"], 3),
        "decisions_ratio": round(medians["decisions"] / medians["grounded"], 3),
        "threads": torch.get_num_threads(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.repeats)
    print(
        f"tiny model, batch of 16 conversations ({result['sequence_length']} tokens, {result['spellings']} spellings, {result['rules']} rules): "
        f"forward+backward {result['plain_s'] * 1000:.1f} ms plain, {result['grounded_s'] * 1000:.1f} ms grounded "
        f"(ratio {result['grounded_ratio']:.3f}), {result['decisions_s'] * 1000:.1f} ms grounded with decision tokens "
        f"(ratio to grounded {result['decisions_ratio']:.3f})"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
