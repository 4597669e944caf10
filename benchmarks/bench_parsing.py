"""Face-parsing throughput of each backend, MediaPipe's detection rate on the LFW subset, and example overlays.

    python benchmarks/bench_parsing.py [--output benchmarks/results/parsing] [--repeats 20]

Inputs are public-domain photos that ship with installed packages: skimage's astronaut (512x512), matplotlib's
grace_hopper.jpg (512x600) and skimage's lfw_subset (100 faces and 100 non-faces, 25x25 grayscale).
Backends: `mediapipe` (detection + mesh + selfie segmentation + rasterisation) and `model` (a SegFormer; its speed
does not depend on its weights, so random weights are used) at two sizes: the tiny preset at 64 px and
SegFormer-B0 at 512 px.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib import cbook
from PIL import Image
from skimage.data import astronaut, lfw_subset

from faceinsight.parsing.labels import legend, overlay, to_palette_image
from faceinsight.parsing.mediapipe_backend import MediaPipeFaceParser
from faceinsight.parsing.model_backend import ModelFaceParser


def throughput(parser, images, repeats: int) -> float:
    parser.parse(images[0])  # warm-up
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        for image in images:
            parser.parse(image)
        timings.append(time.perf_counter() - start)
    return len(images) / statistics.median(timings)


def segformer_folder(preset: str, size: int, folder: Path) -> Path:
    from transformers import AutoConfig, AutoModelForSemanticSegmentation

    from faceinsight.hub.build import TINY_PARSER, parser_config_kwargs
    from faceinsight.processing.image_processing_faceinsight import FaceInsightImageProcessor

    base = TINY_PARSER if preset == "tiny" else {"model_type": "segformer"}  # SegFormer's defaults are B0
    kwargs = {k: v for k, v in parser_config_kwargs(base).items() if k != "model_type"}
    AutoModelForSemanticSegmentation.from_config(AutoConfig.for_model("segformer", **kwargs)).save_pretrained(folder)
    FaceInsightImageProcessor(
        size=size, image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]
    ).save_pretrained(folder)
    return folder


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="benchmarks/results/parsing")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)

    portraits = {
        "astronaut": Image.fromarray(astronaut()),
        "grace_hopper": Image.open(cbook.get_sample_data("grace_hopper.jpg")).convert("RGB"),
    }
    lfw = lfw_subset()
    lfw_images = [Image.fromarray((face * 255).astype(np.uint8)) for face in lfw]
    results = {"threads": torch.get_num_threads()}

    with MediaPipeFaceParser() as mediapipe_parser:
        for name, image in portraits.items():
            parsed = mediapipe_parser.parse(image)
            overlay(image, parsed.label_map).save(output / f"{name}_overlay.png")
            to_palette_image(parsed.label_map).save(output / f"{name}_labels.png")
        faces = [mediapipe_parser.parse(image).face_found for image in lfw_images[:100]]
        non_faces = [mediapipe_parser.parse(image).face_found for image in lfw_images[100:]]
        results["lfw_face_detection_rate"] = float(np.mean(faces))
        results["lfw_non_face_false_positive_rate"] = float(np.mean(non_faces))
        sheet = Image.new("RGB", (8 * 100, 2 * 100))
        for column, image in enumerate(lfw_images[:8]):
            labels = mediapipe_parser.parse(image).label_map
            sheet.paste(image.convert("RGB").resize((100, 100), Image.Resampling.NEAREST), (100 * column, 0))
            sheet.paste(overlay(image, labels).resize((100, 100), Image.Resampling.NEAREST), (100 * column, 100))
        sheet.save(output / "lfw_overlays.png")
        legend().save(output / "legend.png")
        results["mediapipe_portraits_images_per_s"] = throughput(
            mediapipe_parser, list(portraits.values()), args.repeats
        )
        results["mediapipe_lfw_images_per_s"] = throughput(mediapipe_parser, lfw_images[:20], max(1, args.repeats // 4))

    with tempfile.TemporaryDirectory() as scratch:
        for preset, size in (("tiny", 64), ("b0", 512)):
            model_parser = ModelFaceParser(segformer_folder(preset, size, Path(scratch) / preset))
            key = f"model_segformer_{preset}_{size}px_images_per_s"
            results[key] = throughput(model_parser, list(portraits.values()), max(2, args.repeats // 4))

    for key, value in results.items():
        print(f"{key:>48}: {value:.3f}" if isinstance(value, float) else f"{key:>48}: {value}")
    (output / "bench_parsing.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"overlays and maps written to {output}")


if __name__ == "__main__":
    main()
