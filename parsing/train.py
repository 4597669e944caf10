"""`faceinsight train-parser`: fit a SegFormer face parser on image/label-map pairs with the transformers Trainer
(progress bars, checkpoints, `--resume_from_checkpoint`), report per-class IoU on a held-out split against a
constant-prediction baseline, and save the parser into a FaceInsight folder or as a standalone parser folder.

Pairs come from CelebAMask-HQ (ground truth) or from a folder of images plus a folder of maps, such as the output
of `faceinsight parse` (MediaPipe pseudo-labels; images where it found no face are left out and counted).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from faceinsight.modeling.configuration_faceinsight import IMAGENET_MEAN, IMAGENET_STD
from faceinsight.modeling.schema_faceinsight import CELEBAMASK_HQ_LABELS, LABEL_INDEX, NUM_PARSING_LABELS
from faceinsight.parsing.labels import check_label_map, colorize
from faceinsight.parsing.run import collect_images, load_image

# a horizontal flip turns the person's left into their right
FLIP_LABELS = np.arange(NUM_PARSING_LABELS)
for _left, _right in (("l_eye", "r_eye"), ("l_brow", "r_brow"), ("l_ear", "r_ear")):
    FLIP_LABELS[LABEL_INDEX[_left]], FLIP_LABELS[LABEL_INDEX[_right]] = LABEL_INDEX[_right], LABEL_INDEX[_left]


@dataclass
class ParsingPair:
    image: Path
    label_map: Path | None = None  # a label PNG ...
    celebamask: tuple | None = None  # ... or (CelebAMaskHQ, position)

    def load(self) -> tuple[Image.Image, np.ndarray]:
        image = load_image(self.image)
        if self.celebamask is not None:
            dataset, position = self.celebamask
            labels = dataset.label_map(position)
        else:
            labels = load_label_map(self.label_map)
        if abs(labels.shape[1] / labels.shape[0] - image.width / image.height) > 0.02 * image.width / image.height:
            raise ValueError(
                f"{self.label_map or self.image}: map {labels.shape[::-1]} and image {image.size} differ in aspect"
            )
        return image, labels


def load_label_map(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as opened:
            if opened.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"{path} is a {opened.mode} image; a label map holds one label index per pixel")
            labels = np.asarray(opened)
    except OSError as error:
        raise ValueError(f"{path}: unreadable label map: {error}") from None
    return check_label_map(labels, str(path))


def pairs_from_folders(images_dir: str, maps_dir: str) -> tuple[list[ParsingPair], dict[str, int]]:
    """Match IMAGE.ext with MAPS/IMAGE_labels.png (what `faceinsight parse` writes) or MAPS/IMAGE.png. An image with
    no map is an error naming it; images whose parse report says no face was found are skipped and counted."""
    maps_dir = Path(maps_dir)
    pairs, skipped = [], {"no_face": 0}
    for image in collect_images([images_dir]):
        candidates = [maps_dir / f"{image.stem}_labels.png", maps_dir / f"{image.stem}.png"]
        label_map = next((c for c in candidates if c.exists()), None)
        if label_map is None:
            raise FileNotFoundError(
                f"{image}: no label map ({candidates[0].name} or {candidates[1].name}) in {maps_dir}"
            )
        report = maps_dir / f"{image.stem}.json"
        if report.exists() and not json.loads(report.read_text()).get("face_found", True):
            skipped["no_face"] += 1
            continue
        pairs.append(ParsingPair(image=image, label_map=label_map))
    if not pairs:
        raise ValueError(f"no image/map pairs found in {images_dir} and {maps_dir}")
    return pairs, skipped


def pairs_from_celebamask(root: str) -> list[ParsingPair]:
    from faceinsight.parsing.celebamask import CelebAMaskHQ

    dataset = CelebAMaskHQ(root)
    return [ParsingPair(image=dataset.image_path(i), celebamask=(dataset, i)) for i in range(len(dataset))]


class ParsingDataset(torch.utils.data.Dataset):
    """(pixel_values normalised for the parser, labels) at `size` x `size`; training adds mirrored copies (with
    left/right labels swapped) and brightness/contrast jitter."""

    def __init__(self, pairs: list[ParsingPair], size: int, mean, std, augment: bool, seed: int = 0):
        self.pairs, self.size, self.augment = pairs, size, augment
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)
        self.rng = random.Random(seed)

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        image, labels = self.pairs[index].load()
        image = image.resize((self.size, self.size), Image.Resampling.BICUBIC)
        labels = np.asarray(Image.fromarray(labels).resize((self.size, self.size), Image.Resampling.NEAREST))
        pixels = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
        labels = torch.from_numpy(labels.astype(np.int64))
        if self.augment:
            if self.rng.random() < 0.5:
                pixels = pixels.flip(-1)
                labels = torch.from_numpy(FLIP_LABELS)[labels.flip(-1)]
            pixels = ((pixels - 0.5) * self.rng.uniform(0.8, 1.2) + 0.5 + self.rng.uniform(-0.1, 0.1)).clamp(0, 1)
        return {"pixel_values": (pixels - self.mean) / self.std, "labels": labels}


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray) -> np.ndarray:
    flat = labels.astype(np.int64).ravel() * NUM_PARSING_LABELS + predictions.astype(np.int64).ravel()
    return np.bincount(flat, minlength=NUM_PARSING_LABELS**2).reshape(NUM_PARSING_LABELS, NUM_PARSING_LABELS)


def iou_report(confusion: np.ndarray) -> dict:
    """Per-class IoU for the classes present in the held-out ground truth, and their mean."""
    true_positive = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - true_positive
    present = confusion.sum(1) > 0
    per_class = {CELEBAMASK_HQ_LABELS[c]: float(true_positive[c] / union[c]) for c in np.nonzero(present)[0]}
    return {
        "mean_iou": float(np.mean(list(per_class.values()))),
        "per_class_iou": per_class,
        "pixel_accuracy": float(true_positive.sum() / confusion.sum()),
    }


def _upsampled_argmax(logits, labels):
    logits = logits[0] if isinstance(logits, tuple) else logits
    return F.interpolate(logits, size=labels.shape[-2:], mode="bilinear", align_corners=False).argmax(1)


@dataclass
class _ParserToTrain:
    """The parser a run trains, how its inputs are sized and normalised, and the FaceInsight it belongs to (if any)."""

    parser: torch.nn.Module
    size: int
    mean: list[float]
    std: list[float]
    faceinsight_model: torch.nn.Module | None = None
    processor: object = None

    def save(self, output_dir: Path) -> None:
        """A FaceInsight folder with the trained parser inside, or a SegFormer folder with its image processor."""
        if self.faceinsight_model is not None:
            from faceinsight.hub.export import save_model_folder

            photo_size = self.processor.image_processor.size
            # the model reads the photo at the size its parser was trained at (None: the photo's own)
            self.faceinsight_model.config.parser_image_size = None if self.size == photo_size else self.size
            save_model_folder(self.faceinsight_model, self.processor, output_dir)
        else:
            from faceinsight.processing.image_processing_faceinsight import FaceInsightImageProcessor

            self.parser.save_pretrained(output_dir)
            processor = FaceInsightImageProcessor(size=self.size, image_mean=self.mean, image_std=self.std)
            processor.save_pretrained(output_dir)


def _parser_to_train(model_name_or_path, parser_preset: str, image_size: int | None, seed: int) -> _ParserToTrain:
    """A FaceInsight folder's own parser, a SegFormer checkpoint, or a new SegFormer of a preset's size."""
    from transformers import AutoConfig, AutoModelForSemanticSegmentation

    from faceinsight.hub.build import load_preset, parser_config_kwargs

    config_file = Path(model_name_or_path or "") / "config.json"
    if (
        model_name_or_path
        and config_file.exists()
        and json.loads(config_file.read_text()).get("model_type") == "faceinsight"
    ):
        from transformers import AutoProcessor

        from faceinsight import FaceInsightForConditionalGeneration

        model = FaceInsightForConditionalGeneration.from_pretrained(model_name_or_path)
        processor = AutoProcessor.from_pretrained(model_name_or_path)
        size = image_size or model.config.parser_image_size or processor.image_processor.size
        mean, std = model.config.parser_image_mean, model.config.parser_image_std
        return _ParserToTrain(model.model.parser, size, mean, std, model, processor)
    if model_name_or_path:
        kwargs = parser_config_kwargs()
        parser = AutoModelForSemanticSegmentation.from_pretrained(
            model_name_or_path, ignore_mismatched_sizes=True, **kwargs
        )
    else:
        preset = load_preset({"tiny": "tiny", "b0": "segformer_b0"}[parser_preset])["parser"]
        kwargs = {k: v for k, v in parser_config_kwargs(preset).items() if k != "model_type"}
        torch.manual_seed(seed)
        parser = AutoModelForSemanticSegmentation.from_config(AutoConfig.for_model("segformer", **kwargs))
    return _ParserToTrain(parser, image_size or 128, list(IMAGENET_MEAN), list(IMAGENET_STD))


def _split(pairs: list[ParsingPair], eval_fraction: float, seed: int) -> tuple[list[ParsingPair], list[ParsingPair]]:
    """(train, held-out) pairs, shuffled by `seed`; at least one pair in each."""
    order = list(range(len(pairs)))
    random.Random(seed).shuffle(order)
    held_out = max(1, round(eval_fraction * len(pairs)))
    if len(pairs) - held_out < 1:
        raise ValueError(f"{len(pairs)} pairs are too few for a held-out split of {eval_fraction}")
    return [pairs[i] for i in order[held_out:]], [pairs[i] for i in order[:held_out]]


def _majority_baseline(train_set: ParsingDataset, truth: np.ndarray) -> dict:
    """The IoU of labelling every pixel with the class most frequent in the training maps."""
    counts = np.zeros(NUM_PARSING_LABELS, dtype=np.int64)
    for item in train_set.pairs:
        counts += np.bincount(item.load()[1].ravel(), minlength=NUM_PARSING_LABELS)
    majority = int(counts.argmax())
    baseline = iou_report(confusion_matrix(np.full_like(truth, majority), truth))
    return {"baseline_mean_iou": baseline["mean_iou"], "baseline_class": CELEBAMASK_HQ_LABELS[majority]}


def _training_arguments(output_dir: Path, max_steps, batch_size, learning_rate, save_steps, seed):
    """The parser's recipe: cosine schedule with 5% warm-up, two checkpoints kept, progress logged ten times."""
    from transformers import TrainingArguments

    return TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        max_steps=max_steps,
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=max(1, max_steps // 20),
        logging_steps=max(1, max_steps // 10),
        save_steps=save_steps,
        save_total_limit=2,
        eval_strategy="no",
        seed=seed,
        use_cpu=not torch.cuda.is_available(),
        report_to=[],
        remove_unused_columns=False,
        dataloader_num_workers=0,
    )


def train_parser(
    output_dir: str,
    pairs: list[ParsingPair],
    model_name_or_path: str | None = None,
    parser_preset: str = "tiny",
    image_size: int | None = None,
    eval_fraction: float = 0.2,
    max_steps: int = 300,
    per_device_train_batch_size: int = 8,
    learning_rate: float = 1e-3,
    save_steps: int = 100,
    seed: int = 0,
    resume_from_checkpoint: str | bool | None = None,
    skipped: dict | None = None,
) -> dict:
    """Train a face parser on (image, map) pairs with the Trainer, score it on held-out pairs against the
    majority-class baseline, and save it with `parser_report.json` and `parser_examples.png`."""
    from transformers import Trainer

    output_dir = Path(output_dir)
    source = _parser_to_train(model_name_or_path, parser_preset, image_size, seed)
    source.parser.requires_grad_(True)
    train_pairs, eval_pairs = _split(pairs, eval_fraction, seed)
    train_set = ParsingDataset(train_pairs, source.size, source.mean, source.std, augment=True, seed=seed)
    eval_set = ParsingDataset(eval_pairs, source.size, source.mean, source.std, augment=False)

    def compute_metrics(evaluation):
        return {"mean_iou": iou_report(confusion_matrix(evaluation.predictions, evaluation.label_ids))["mean_iou"]}

    arguments = _training_arguments(output_dir, max_steps, per_device_train_batch_size, learning_rate, save_steps, seed)
    trainer = Trainer(
        model=source.parser,
        args=arguments,
        train_dataset=train_set,
        eval_dataset=eval_set,
        compute_metrics=compute_metrics,
        preprocess_logits_for_metrics=_upsampled_argmax,
    )
    trainer.train(resume_from_checkpoint=resume_from_checkpoint)
    prediction = trainer.predict(eval_set)
    predicted, truth = prediction.predictions, prediction.label_ids
    report = iou_report(confusion_matrix(predicted, truth))
    report.update(_majority_baseline(train_set, truth))
    report.update(
        train_pairs=len(train_pairs),
        held_out_pairs=len(eval_pairs),
        image_size=source.size,
        max_steps=max_steps,
        skipped=skipped or {},
    )
    source.save(output_dir)
    (output_dir / "parser_report.json").write_text(json.dumps(report, indent=2) + "\n")
    _example_picture(eval_set, predicted, truth).save(output_dir / "parser_examples.png")
    return report


def _example_picture(eval_set: ParsingDataset, predicted: np.ndarray, truth: np.ndarray, rows: int = 4) -> Image.Image:
    """Held-out examples: photo | ground truth | prediction, one row each, with column titles and the legend."""
    from faceinsight.parsing.labels import sheet_with_legend

    pictures = []
    for row in range(min(rows, len(eval_set))):
        pixels = eval_set[row]["pixel_values"] * eval_set.std + eval_set.mean
        photo = Image.fromarray((pixels.clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8))
        pictures.append([photo, Image.fromarray(colorize(truth[row])), Image.fromarray(colorize(predicted[row]))])
    return sheet_with_legend(["photo", "ground truth", "prediction"], pictures, cell=max(128, eval_set.size))
