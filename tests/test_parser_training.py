import json

import numpy as np
import pytest
import torch
from PIL import Image

from faceinsight.commands import main
from faceinsight.modeling.schema_faceinsight import LABEL_INDEX
from faceinsight.parsing.celebamask import CelebAMaskHQ
from faceinsight.parsing.run import parse_images
from faceinsight.parsing.train import FLIP_LABELS, ParsingDataset, pairs_from_celebamask, pairs_from_folders


@pytest.fixture(scope="module")
def lfw_pseudo_labels(tmp_path_factory):
    """The 100 LFW faces shipped with scikit-image, labelled by the MediaPipe backend (pseudo-labels)."""
    from skimage.data import lfw_subset

    root = tmp_path_factory.mktemp("lfw")
    (root / "images").mkdir()
    for index, face in enumerate(lfw_subset()[:100]):
        Image.fromarray((face * 255).astype(np.uint8)).save(root / "images" / f"lfw_{index:03d}.png")
    written, failed = parse_images([str(root / "images")], root / "maps")
    assert len(written) == 100 and not failed
    return root


@pytest.mark.slow
def test_faceinsight_parser_trains_and_then_parses_without_maps(lfw_pseudo_labels, tiny_folder, tmp_path, capsys):
    out = tmp_path / "trained"
    code = main(
        [
            "train-parser",
            "--images",
            str(lfw_pseudo_labels / "images"),
            "--maps",
            str(lfw_pseudo_labels / "maps"),
            "--model_name_or_path",
            str(tiny_folder),
            "--output_dir",
            str(out),
            "--max_steps",
            "600",
            "--learning_rate",
            "2e-3",
            "--save_steps",
            "300",
        ]
    )
    assert code == 0
    report = json.loads((out / "parser_report.json").read_text())
    assert report["skipped"]["no_face"] == 3 and report["train_pairs"] + report["held_out_pairs"] == 97
    assert report["mean_iou"] > 3 * report["baseline_mean_iou"] and report["mean_iou"] > 0.25, report
    assert report["per_class_iou"]["skin"] > 0.5 and report["per_class_iou"]["nose"] > 0.3
    assert (out / "parser_examples.png").exists() and "held-out mean IoU" in capsys.readouterr().out

    # the FaceInsight folder now parses faces by itself: no map given
    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.processing.image_processing_faceinsight import FaceInsightImageProcessor

    model = FaceInsightForConditionalGeneration.from_pretrained(out)
    assert not model.train().model.parser.training  # the parser runs in eval mode inside FaceInsight, always
    face = Image.open(lfw_pseudo_labels / "images" / "lfw_000.png")
    pixel_values = FaceInsightImageProcessor.from_pretrained(out)([face])["pixel_values"]
    maps = model.predict_face_labels(pixel_values).parsing_maps[0]
    for part in ("skin", "nose", "l_eye", "r_eye"):
        assert (maps == LABEL_INDEX[part]).sum() > 0, part
    ys, xs = torch.nonzero(maps == LABEL_INDEX["nose"], as_tuple=True)
    eye_ys, _ = torch.nonzero(maps == LABEL_INDEX["l_eye"], as_tuple=True)
    assert eye_ys.float().mean() < ys.float().mean()  # eyes above the nose


def test_standalone_parser_checkpoints_and_resumes(lfw_pseudo_labels, tmp_path):
    out = tmp_path / "parser"
    args = [
        "train-parser",
        "--images",
        str(lfw_pseudo_labels / "images"),
        "--maps",
        str(lfw_pseudo_labels / "maps"),
        "--output_dir",
        str(out),
        "--image_size",
        "32",
        "--save_steps",
        "4",
    ]
    assert main([*args, "--max_steps", "8"]) == 0
    assert (out / "checkpoints" / "checkpoint-8").is_dir()
    assert main([*args, "--max_steps", "12", "--resume_from_checkpoint", "true"]) == 0
    state = json.loads((out / "checkpoints" / "checkpoint-12" / "trainer_state.json").read_text())
    assert state["global_step"] == 12 and state["log_history"][0]["step"] < 8  # history carried over
    assert (
        main(
            [
                "parse",
                str(lfw_pseudo_labels / "images" / "lfw_001.png"),
                "--output",
                str(tmp_path / "p"),
                "--backend",
                "model",
                "--model",
                str(out),
            ]
        )
        == 0
    )


def test_missing_maps_are_named(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "maps").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "images" / "face_a.png")
    with pytest.raises(FileNotFoundError, match=r"face_a.png: no label map \(face_a_labels.png or face_a.png\)"):
        pairs_from_folders(str(tmp_path / "images"), str(tmp_path / "maps"))
    Image.new("RGB", (8, 8)).save(tmp_path / "maps" / "face_a.png")
    pairs, _ = pairs_from_folders(str(tmp_path / "images"), str(tmp_path / "maps"))
    with pytest.raises(ValueError, match="is a RGB image"):
        pairs[0].load()


def test_flips_swap_left_and_right():
    image = Image.new("RGB", (4, 2))
    labels = np.array([[LABEL_INDEX["l_eye"], LABEL_INDEX["skin"], 0, LABEL_INDEX["r_brow"]]] * 2, dtype=np.uint8)

    class Pair:
        def load(self):
            return image, labels

    dataset = ParsingDataset([Pair()], size=4, mean=[0.5] * 3, std=[0.5] * 3, augment=True, seed=0)
    seen = {tuple(dataset[0]["labels"][0].tolist()) for _ in range(20)}
    assert (LABEL_INDEX["l_brow"], 0, LABEL_INDEX["skin"], LABEL_INDEX["r_eye"]) in seen  # mirrored, sides swapped
    assert tuple(labels[0].tolist()) in seen
    assert FLIP_LABELS[FLIP_LABELS].tolist() == list(range(19))


def _write_celebamask(root, index, parts, size=16):
    (root / "CelebA-HQ-img").mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (2 * size, 2 * size), (150, 120, 100)).save(root / "CelebA-HQ-img" / f"{index}.jpg")
    folder = root / "CelebAMask-HQ-mask-anno" / str(index // 2000)
    folder.mkdir(parents=True, exist_ok=True)
    for part, (top, bottom) in parts.items():
        mask = np.zeros((size, size, 3), dtype=np.uint8)
        mask[top:bottom] = 255
        Image.fromarray(mask).save(folder / f"{index:05d}_{part}.png")


def test_celebamask_reader_combines_part_masks_in_dataset_order(tmp_path):
    _write_celebamask(tmp_path, 0, {"skin": (0, 12), "hair": (0, 4), "nose": (5, 8), "cloth": (13, 16)})
    _write_celebamask(tmp_path, 2001, {"skin": (2, 14)})
    dataset = CelebAMaskHQ(tmp_path)
    assert len(dataset) == 2 and dataset.image_path(1).name == "2001.jpg"
    labels = dataset.label_map(0)
    assert labels.shape == (16, 16)
    assert (labels[0:4] == LABEL_INDEX["hair"]).all()  # hair painted over skin
    assert (labels[5:8] == LABEL_INDEX["nose"]).all() and (labels[4] == LABEL_INDEX["skin"]).all()
    assert (labels[12] == 0).all() and (labels[13:] == LABEL_INDEX["cloth"]).all()
    assert (dataset.label_map(1)[2:14] == LABEL_INDEX["skin"]).all()  # masks of index 2001 live in folder 1
    image, labels = pairs_from_celebamask(str(tmp_path))[0].load()
    assert image.size == (32, 32) and labels.shape == (16, 16)  # same aspect, maps at half resolution


def test_celebamask_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="CelebA-HQ-img not found"):
        CelebAMaskHQ(tmp_path)
    _write_celebamask(tmp_path, 3, {"skin": (0, 4)})
    Image.new("RGB", (8, 8)).save(tmp_path / "CelebA-HQ-img" / "7.jpg")  # no masks at all
    bad = np.zeros((8, 8), dtype=np.uint8)
    Image.fromarray(bad).save(tmp_path / "CelebAMask-HQ-mask-anno" / "0" / "00003_nose.png")  # wrong size
    dataset = CelebAMaskHQ(tmp_path)
    with pytest.raises(ValueError, match=r"00003_nose.png is \(8, 8\) but the other masks of image 3 are \(16, 16\)"):
        dataset.label_map(0)
    with pytest.raises(ValueError, match="image 7: no part masks"):
        dataset.label_map(1)


def test_a_parser_trained_at_another_size_reads_the_photo_at_that_size(tiny_folder, tmp_path):
    """train-parser --image_size 128 on a 64-px model writes parser_image_size; the model then hands its parser the
    photo enlarged to 128 px and returns the map at the photo's own size. A folder without the field reads as
    before (the parser sees the photo as it is)."""
    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.commands.demo import write_parser_pairs

    images, maps = write_parser_pairs(tmp_path / "pairs", 12, 0, 64)
    out = tmp_path / "trained"
    argv = ["train-parser", "--images", str(images), "--maps", str(maps), "--model_name_or_path", str(tiny_folder)]
    argv += ["--output_dir", str(out), "--max_steps", "2", "--image_size", "128", "--save_steps", "100"]
    assert main(argv) == 0
    assert json.loads((out / "parser_report.json").read_text())["image_size"] == 128
    seen = []
    for folder, expected in ((out, 128), (tiny_folder, 64)):
        model = FaceInsightForConditionalGeneration.from_pretrained(folder).eval()
        assert model.config.parser_image_size == (128 if folder == out else None)
        handle = model.model.parser.register_forward_pre_hook(
            lambda _m, args, kwargs: seen.append(kwargs["pixel_values"].shape[-1]), with_kwargs=True
        )
        with torch.no_grad():
            parsed = model.model.parse_faces(torch.zeros(2, 3, 64, 64))
        handle.remove()
        assert seen[-1] == expected and parsed.shape == (2, 64, 64)
