"""Each adapter reads small fixtures written here in the dataset's original layout."""

import hashlib
import json

import datasets
import pytest
from PIL import Image

from faceinsight.modeling.configuration_faceinsight import CELEBA_ATTRIBUTES
from faceinsight.training import face_datasets as fd


def _image(path):
    """A small image whose pixels differ per file (readers find files with the same bytes: duplicates, leaks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    colour = tuple(hashlib.md5(str(path.relative_to(path.parent.parent)).encode()).digest()[:3])
    Image.new("RGB", (12, 14), colour).save(path)


def _labels(dataset, row):
    return json.loads(dataset[row]["labels"])


def _write_celeba(root, rows, attr_name="list_attr_celeba.txt", image_dir="img_align_celeba", partition=True):
    lines = [str(len(rows)), " ".join(CELEBA_ATTRIBUTES)]
    for name, positives in rows:
        values = ["1" if a in positives else "-1" for a in CELEBA_ATTRIBUTES]
        lines.append(" ".join([name, *values]))
        _image(root / image_dir / name)
    (root / attr_name).write_text("\n".join(lines) + "\n")
    if partition:
        (root / "list_eval_partition.txt").write_text("\n".join(f"{n} {i % 3}" for i, (n, _) in enumerate(rows)) + "\n")


def test_celeba(tmp_path):
    _write_celeba(
        tmp_path, [("000001.jpg", {"Smiling", "Male"}), ("000002.jpg", {"Eyeglasses"}), ("000003.jpg", set())]
    )
    dataset, report = fd.read_celeba(tmp_path)
    assert report["rows"] == 3 and report["splits"] == {"train": 1, "validation": 1, "test": 1}
    first = _labels(dataset, 0)
    assert first["Smiling"] == 1 and first["Male"] == 1 and first["Eyeglasses"] == 0 and first["gender"] == "Male"
    assert _labels(dataset, 1)["gender"] == "Female" and len(first) == 41
    assert dataset[0]["image"].size == (12, 14) and dataset[0]["source"].endswith("list_attr_celeba.txt:3")


def test_celeba_errors_name_file_and_line(tmp_path):
    _write_celeba(tmp_path, [("000001.jpg", {"Smiling"}), ("000002.jpg", set())])
    attr = tmp_path / "list_attr_celeba.txt"
    lines = attr.read_text().splitlines()
    lines[3] = lines[3].replace("-1", "0", 1)
    attr.write_text("\n".join(lines) + "\n")
    with pytest.raises(fd.DatasetFormatError, match=r"list_attr_celeba.txt:4: attribute values must be 1 or -1"):
        fd.read_celeba(tmp_path)
    dataset, report = fd.read_celeba(tmp_path, on_error="skip")
    assert report["rows"] == 1 and report["skipped"] == {"DatasetFormatError": 1}
    (tmp_path / "img_align_celeba" / "000001.jpg").unlink()
    with pytest.raises(FileNotFoundError, match=r"list_attr_celeba.txt:3: image .*000001.jpg not found"):
        fd.read_celeba(tmp_path)


def test_lfwa_uses_celeba_format_and_hash_split(tmp_path):
    _write_celeba(
        tmp_path,
        [(f"p{i}/img_{i}.jpg", {"Young"}) for i in range(5)],
        attr_name="list_attr_lfwa.txt",
        image_dir="lfw",
        partition=False,
    )
    dataset, report = fd.read_lfwa(tmp_path)
    assert report["rows"] == 5 and all(_labels(dataset, i)["Young"] == 1 for i in range(5))
    again, _ = fd.read_lfwa(tmp_path)
    assert dataset["split"] == again["split"]  # stable


def test_fairface(tmp_path):
    (tmp_path / "fairface_label_train.csv").write_text(
        "file,age,gender,race,service_test\ntrain/1.jpg,20-29,Female,East Asian,True\n"
        "train/2.jpg,more than 70,Male,Latino_Hispanic,False\n"
    )
    (tmp_path / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,3-9,Male,Black,True\n"
    )
    for name in ("train/1.jpg", "train/2.jpg", "val/1.jpg"):
        _image(tmp_path / name)
    dataset, report = fd.read_fairface(tmp_path)
    assert report["splits"] == {"train": 2, "test": 1}
    assert _labels(dataset, 1) == {"age": "70+", "gender": "Male", "race": "Latino_Hispanic"}
    (tmp_path / "fairface_label_val.csv").write_text(
        "file,age,gender,race,service_test\nval/1.jpg,3-9,Male,Martian,True\n"
    )
    with pytest.raises(fd.DatasetFormatError, match=r"fairface_label_val.csv:2: unknown race 'Martian'"):
        fd.read_fairface(tmp_path)


def test_utkface(tmp_path):
    for name in ("25_0_0_20170116.jpg", "3_1_2_20170117.jpg", "71_1_3_20170118.jpg"):
        _image(tmp_path / name)
    dataset, report = fd.read_utkface(tmp_path)
    by_name = {row["source"].split("/")[-1]: json.loads(row["labels"]) for row in dataset}
    assert by_name["25_0_0_20170116.jpg"] == {"age": "20-29", "gender": "Male", "race": "White"}
    assert by_name["3_1_2_20170117.jpg"] == {"age": "3-9", "gender": "Female"}  # Asian: no single FairFace group
    assert by_name["71_1_3_20170118.jpg"]["age"] == "70+"
    _image(tmp_path / "25_7_0_20170119.jpg")
    with pytest.raises(fd.DatasetFormatError, match=r"25_7_0_20170119.jpg: unknown label in the name"):
        fd.read_utkface(tmp_path)


def test_rafdb(tmp_path):
    (tmp_path / "EmoLabel").mkdir()
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 4\ntest_0001.jpg 7\n")
    _image(tmp_path / "Image" / "aligned" / "train_00001_aligned.jpg")
    _image(tmp_path / "Image" / "aligned" / "test_0001_aligned.jpg")
    dataset, report = fd.read_rafdb(tmp_path)
    assert [_labels(dataset, i)["expression"] for i in range(2)] == ["Happiness", "Neutral"]
    assert report["splits"] == {"train": 1, "test": 1}
    (tmp_path / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 4\ntest_0001.jpg 9\n")
    with pytest.raises(fd.DatasetFormatError, match=r"list_patition_label.txt:2: unknown expression label 9"):
        fd.read_rafdb(tmp_path)


def test_affectnet_counts_what_it_skips(tmp_path):
    (tmp_path / "training.csv").write_text(
        "subDirectory_filePath,face_x,expression\n1/a.jpg,0,1\n1/b.jpg,0,7\n1/c.jpg,0,9\n"
    )
    (tmp_path / "validation.csv").write_text("subDirectory_filePath,face_x,expression\n2/d.jpg,0,6\n")
    for name in ("1/a.jpg", "1/b.jpg", "1/c.jpg", "2/d.jpg"):
        _image(tmp_path / "Manually_Annotated_Images" / name)
    dataset, report = fd.read_affectnet(tmp_path)
    assert [_labels(dataset, i)["expression"] for i in range(2)] == ["Happiness", "Anger"]
    assert report["skipped"] == {"contempt_with_7_expressions": 1, "not_an_expression": 1}


def test_celebamask_hq_with_attributes(tmp_path):
    import numpy as np

    (tmp_path / "CelebA-HQ-img").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "CelebA-HQ-img" / "0.jpg")
    masks = tmp_path / "CelebAMask-HQ-mask-anno" / "0"
    masks.mkdir(parents=True)
    skin = np.zeros((16, 16), dtype=np.uint8)
    skin[4:12, 4:12] = 255
    Image.fromarray(skin).save(masks / "00000_skin.png")
    values = ["1" if a == "Bangs" else "-1" for a in CELEBA_ATTRIBUTES]
    (tmp_path / "CelebAMask-HQ-attribute-anno.txt").write_text(
        f"1\n{' '.join(CELEBA_ATTRIBUTES)}\n0.jpg {' '.join(values)}\n"
    )
    dataset, _ = fd.read_celebamask_hq(tmp_path)
    assert _labels(dataset, 0)["Bangs"] == 1
    assert np.asarray(dataset[0]["parsing_map"])[8, 8] == 1


def test_hugging_face_dataset_with_the_same_fields():
    images = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(3)]
    source = datasets.Dataset.from_dict(
        {"image": images, "expression": ["Happiness", "Fear", "Neutral"], "Smiling": [1, 0, 0]}
    )
    dataset, report = fd.from_hf_dataset(source)
    assert report["rows"] == 3 and _labels(dataset, 1) == {"expression": "Fear", "Smiling": 0}
    with pytest.raises(ValueError, match="row 0: unknown expression 'Joy'"):
        fd.from_hf_dataset(datasets.Dataset.from_dict({"image": images[:1], "expression": ["Joy"]}))


def test_synthetic_faces_are_deterministic_and_follow_their_rules():
    first, _ = fd.synthetic_faces(300, seed=1)
    again, _ = fd.synthetic_faces(3, seed=1)
    assert first[0]["labels"] == again[0]["labels"] and list(first[0]["image"].getdata()) == list(
        again[0]["image"].getdata()
    )
    hair = ("Black_Hair", "Blond_Hair", "Brown_Hair", "Gray_Hair")
    genders = []
    for row in first:
        labels = json.loads(row["labels"])
        assert not (labels["Bald"] and (labels["Bangs"] or any(labels[h] for h in hair)))
        assert labels["Bald"] or sum(labels[h] for h in hair) == 1
        assert not (labels["Goatee"] and labels["No_Beard"])
        assert labels["Young"] == (labels["age"] in ("0-2", "3-9", "10-19", "20-29"))
        assert labels["expression"] != "Happiness" or labels["Smiling"]
        genders.append((labels["gender"], labels["Wearing_Lipstick"]))
    lipstick_women = sum(1 for g, lip in genders if g == "Female" and lip) / max(
        1, sum(g == "Female" for g, _ in genders)
    )
    lipstick_men = sum(1 for g, lip in genders if g == "Male" and lip) / max(1, sum(g == "Male" for g, _ in genders))
    assert lipstick_women > 0.3 > 0.05 > lipstick_men  # a correlation, not a rule


def _write_maadface(root, rows, header=None):
    from faceinsight.modeling.schema_faceinsight import MAAD_FACE_ATTRIBUTES

    header = header or ["Filename", "Identity", *MAAD_FACE_ATTRIBUTES]
    lines = [",".join(header)]
    for split, name, values in rows:
        lines.append(",".join([name, name.split("/")[0], *values]))
        if split:
            _image(root / split / name)
    (root / "MAAD_Face.csv").write_text("\n".join(lines) + "\n")


def test_maadface(tmp_path):
    """MAAD_Face.csv beside VGGFace2's train/ and test/ folders: 1 / -1 / 0 (undecided: unknown), split by folder."""
    from faceinsight.modeling.schema_faceinsight import MAAD_FACE_ATTRIBUTES

    first = ["1" if a in ("Male", "Square_Face", "Smiling") else "-1" for a in MAAD_FACE_ATTRIBUTES]
    second = [
        "0" if a in ("Male", "Brown_Eyes") else "1" if a == "Fully_Visible_Forehead" else "-1"
        for a in MAAD_FACE_ATTRIBUTES
    ]
    _write_maadface(tmp_path, [("train", "n000002/0001_01.jpg", first), ("test", "n000009/0003_02.jpg", second)])
    dataset, report = fd.read_maadface(tmp_path)
    assert report["rows"] == 2 and sorted(dataset["split"]) == ["test", "train"]
    by_split = {row["split"]: json.loads(row["labels"]) for row in dataset}
    assert by_split["train"]["Male"] == 1 and by_split["train"]["gender"] == "Male"
    assert by_split["train"]["Square_Face"] == 1 and by_split["train"]["Round_Face"] == 0
    assert "Male" not in by_split["test"] and "gender" not in by_split["test"] and "Brown_Eyes" not in by_split["test"]
    assert by_split["test"]["Fully_Visible_Forehead"] == 1 and len(by_split["test"]) == 45
    # a model built with MAAD-Face's label nodes beside CelebA's learns them
    from faceinsight.hub.build import build_tiny
    from faceinsight.modeling.schema_faceinsight import FACE_ATTRIBUTES
    from faceinsight.training.instructions import encode_labels

    config = build_tiny(binary_attributes=list(FACE_ATTRIBUTES))[0].config
    targets = encode_labels(by_split["train"], config)
    assert config.num_label_nodes == 53 + 25 and targets[config.label_names.index("Square_Face")] == 1
    assert targets[config.label_names.index("Blurry")] == -100  # a CelebA attribute MAAD-Face does not label
    # errors name the file and line
    bad = list(first)
    bad[MAAD_FACE_ATTRIBUTES.index("Senior")] = "2"
    _write_maadface(tmp_path, [("train", "n000002/0001_01.jpg", first), (None, "n000002/0002_01.jpg", bad)])
    with pytest.raises(fd.DatasetFormatError, match=r"MAAD_Face.csv:3: attribute Senior must be 1, -1 or 0, got '2'"):
        fd.read_maadface(tmp_path)
    _write_maadface(tmp_path, [("train", "n000002/0001_01.jpg", first), (None, "n000004/0001_01.jpg", first)])
    with pytest.raises(FileNotFoundError, match=r"MAAD_Face.csv:3: image n000004/0001_01.jpg not found"):
        fd.read_maadface(tmp_path)
    _write_maadface(tmp_path, [], header=["Filename", "Identity", "Male"])
    with pytest.raises(fd.DatasetFormatError, match=r"MAAD_Face.csv:1: missing columns"):
        fd.read_maadface(tmp_path)
