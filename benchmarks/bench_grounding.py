"""What grounded words cost in training: one forward + backward of the demo's batch, grounding on vs off.

The tiny preset (the demo's model); one batch of 16 synthetic faces as the demo's four-question conversations,
through FaceInsight's collator. One model, measured interleaved (on, off, on, ...; medians), so noise on a busy
machine lands on both alike.

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
    from faceinsight.hub.build import build_tiny

    torch.manual_seed(0)
    model, processor = build_tiny(seed=0)
    model.train()
    batch = batch_for(model, processor)
    times = {True: [], False: []}
    for _ in range(2):  # warm-up
        step(model, batch)
    for _ in range(repeats):
        for grounded in (True, False):
            model.config.ground_knowledge_words = grounded
            times[grounded].append(step(model, batch))
    model.config.ground_knowledge_words = True
    on, off = statistics.median(times[True]), statistics.median(times[False])
    return {
        "sequence_length": int(batch["input_ids"].shape[1]),
        "spellings": int(model.model.knowledge_tokens.word_ids.shape[0]),
        "grounded_s": round(on, 4),
        "plain_s": round(off, 4),
        "ratio": round(on / off, 3),
        "threads": torch.get_num_threads(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--json")
    args = parser.parse_args()
    result = measure(args.repeats)
    print(
        f"tiny model, batch of 16 conversations ({result['sequence_length']} tokens, {result['spellings']} spellings): "
        f"forward+backward {result['grounded_s'] * 1000:.1f} ms grounded vs {result['plain_s'] * 1000:.1f} ms plain, "
        f"ratio {result['ratio']:.3f}"
    )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)


if __name__ == "__main__":
    main()
