"""Parsing maps computed once: `faceinsight parse` over a dataset's images, then `train` and `eval` read them with
--parsing_maps_dir and the parser never runs inside their loops."""

import numpy as np
import pytest
from PIL import Image
from transformers import SegformerForSemanticSegmentation

from faceinsight.commands import main
from faceinsight.training import face_datasets as fd


@pytest.fixture
def utkface_with_maps(tmp_path, tiny_folder, lfw_faces):
    data = tmp_path / "utkface"
    data.mkdir()
    for i in range(10):  # UTKFace's layout: AGE_GENDER_RACE_DATE.jpg; every file's pixels differ (no duplicates)
        face = lfw_faces[i % len(lfw_faces)].convert("RGB").resize((64, 64)).rotate(9 * i)
        face.save(data / f"{20 + 3 * i}_{i % 2}_0_201701{10 + i}.jpg")
    maps = tmp_path / "maps"
    assert main(["parse", str(data), "--output", str(maps), "--backend", "model", "--model", str(tiny_folder)]) == 0
    return data, maps


def test_records_take_the_maps_parse_wrote(utkface_with_maps):
    data, maps = utkface_with_maps
    records, _ = fd.read_utkface(data)
    assert all(row["parsing_map"] is None for row in records)
    with_maps = fd.attach_parsing_maps(records, maps)
    for row in with_maps:
        stem = row["source"].split("/")[-1].rsplit(".", 1)[0]
        assert np.array_equal(np.asarray(row["parsing_map"]), np.asarray(Image.open(maps / f"{stem}_labels.png")))
    lfw = Image.new("RGB", (64, 64), (200, 150, 120))
    lfw.save(data / "33_1_0_20170130.jpg")  # an image parse never saw
    records, _ = fd.read_utkface(data)
    with pytest.raises(FileNotFoundError, match=r"no map for 1 of 11 images \(first: .*33_1_0_20170130.jpg\)"):
        fd.attach_parsing_maps(records, maps)
    with pytest.raises(FileNotFoundError, match="no maps written by `faceinsight parse`"):
        fd.attach_parsing_maps(records, data)


def test_train_and_eval_never_run_the_parser_with_maps(utkface_with_maps, tiny_folder, tmp_path, monkeypatch, capsys):
    data, maps = utkface_with_maps

    def parser_ran(*args, **kwargs):
        raise AssertionError("the in-model parser ran although every image has a map")

    # the parser is a transformers SegFormer whichever class loads the folder (ours, or its remote-code copy)
    monkeypatch.setattr(SegformerForSemanticSegmentation, "forward", parser_ran)
    argv = ["train", "--model_name_or_path", str(tiny_folder), "--output_dir", str(tmp_path / "run")]
    argv += ["--dataset_name", "utkface", "--dataset_dir", str(data), "--parsing_maps_dir", str(maps)]
    assert main([*argv, "--max_steps", "2", "--per_device_train_batch_size", "2"]) == 0
    argv = ["eval", "--model", str(tmp_path / "run"), "--dataset", "utkface", "--dataset_dir", str(data)]
    argv += ["--split", "train", "--parsing_maps_dir", str(maps), "--no_generated", "--output_dir", str(tmp_path / "e")]
    assert main(argv) == 0
    # and without the maps the parser is what runs
    argv[argv.index("--parsing_maps_dir") : argv.index("--parsing_maps_dir") + 2] = []
    capsys.readouterr()
    assert main([*argv[:-1], str(tmp_path / "e2")]) != 0
    assert "the in-model parser ran" in capsys.readouterr().err
