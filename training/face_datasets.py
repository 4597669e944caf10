"""Face datasets in their original on-disk layouts, read into one record type (a `datasets.Dataset`):

    image        the photo (datasets.Image, decoded lazily)
    parsing_map  a label map in the CelebAMask-HQ scheme, or None
    labels       JSON: {"Smiling": 1, ..., "age": "20-29", "gender": "Female", "race": ..., "expression": ...}
                 holding only the facets the dataset has (the rest are masked at training time)
    split        train / validation / test
    source       "file:line" the record came from

Every reader verifies its data once, up front, before any training starts: each value against the schema (headers
included; a UTF-8 BOM is read as text), each image file (decoded, within the pixel cap: a corrupt or truncated
file is found here, not mid-training), duplicate images (the same file, or the same bytes under two names) and
images shared between splits (a train/test leak). A problem stops with an error naming the file and line; with
`on_error="skip"` the row is skipped and counted in the returned report instead (a duplicate keeps its first row, a
leak keeps the training row). Nothing is dropped silently. Readers never write into the dataset's folder.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import json
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
from tqdm.auto import tqdm

from faceinsight.modeling.schema_faceinsight import (
    AGE_BINS,
    CELEBA_ATTRIBUTES,
    DEFAULT_CATEGORICAL_FACETS,
    FACE_ATTRIBUTES,
    MAAD_FACE_ATTRIBUTES,
    age_bin,
)

RECORD_FEATURES = datasets.Features(
    {
        "image": datasets.Image(),
        "parsing_map": datasets.Image(),
        "labels": datasets.Value("string"),
        "split": datasets.Value("string"),
        "source": datasets.Value("string"),
    }
)
SPLITS = ("train", "validation", "test")
FAIRFACE_AGES = {**{name: name for name in AGE_BINS}, "more than 70": "70+"}  # FairFace writes its last bin so
RAFDB_EXPRESSIONS = {1: "Surprise", 2: "Fear", 3: "Disgust", 4: "Happiness", 5: "Sadness", 6: "Anger", 7: "Neutral"}
AFFECTNET_EXPRESSIONS = {
    0: "Neutral",
    1: "Happiness",
    2: "Sadness",
    3: "Surprise",
    4: "Fear",
    5: "Disgust",
    6: "Anger",
    7: "Contempt",
}
UTKFACE_RACES = {0: "White", 1: "Black", 2: None, 3: "Indian", 4: None}  # Asian and Others do not map onto FairFace's


class DatasetFormatError(ValueError):
    """A row that cannot be read: the message names the file and line."""


def hash_split(key: str, validation: float = 0.1, test: float = 0.1) -> str:
    """A stable split for datasets that ship none."""
    value = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if value < test else "validation" if value < test + validation else "train"


def check_labels(labels: dict, where: str) -> dict:
    for name, value in labels.items():
        if name in DEFAULT_CATEGORICAL_FACETS:
            if value not in DEFAULT_CATEGORICAL_FACETS[name]:
                raise DatasetFormatError(
                    f"{where}: unknown {name} {value!r}; expected one of {DEFAULT_CATEGORICAL_FACETS[name]}"
                )
        elif name in FACE_ATTRIBUTES:
            if value not in (0, 1):
                raise DatasetFormatError(f"{where}: attribute {name} must be 0/1, got {value!r}")
        else:
            raise DatasetFormatError(f"{where}: unknown label {name!r}")
    return labels


class _Collector:
    """Gathers rows, applying the on_error policy, and builds the Dataset and its report."""

    def __init__(self, name: str, on_error: str, verify_images: bool = True):
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        self.name, self.on_error, self.verify_images = name, on_error, verify_images
        self.rows, self.skipped = [], Counter()

    def add(self, where: str, build):
        """`build()` returns (image_path, labels, split[, parsing_map]) or raises; any error is named by `where`."""
        try:
            image, labels, split, *rest = build()
            if not Path(image).is_file():
                raise FileNotFoundError(f"{where}: image {image} not found")
            if split not in SPLITS:
                raise DatasetFormatError(f"{where}: unknown split {split!r}")
            check_labels(labels, where)
        except (DatasetFormatError, FileNotFoundError) as error:
            self._problem(type(error).__name__, error)
            return
        except (ValueError, IndexError, KeyError, TypeError, AttributeError) as error:
            self._problem(
                "DatasetFormatError", DatasetFormatError(f"{where}: malformed row ({type(error).__name__}: {error})")
            )
            return
        parsing_map = rest[0] if rest else None
        self.rows.append(
            {
                "image": str(image),
                "parsing_map": parsing_map,
                "labels": json.dumps(labels),
                "split": split,
                "source": where,
            }
        )

    def _problem(self, kind: str, error: Exception):
        if self.on_error == "raise":
            raise error
        self.skipped[kind] += 1

    def skip(self, reason: str):
        self.skipped[reason] += 1

    def _verify(self):
        """Decode every image (within the pixel cap); drop duplicates and cross-split copies (by path and bytes)."""
        from faceinsight.processing.image_processing_faceinsight import open_image

        kept, seen = [], {}
        for row in tqdm(self.rows, desc=f"verifying {self.name}", unit="image", disable=len(self.rows) < 2000):
            try:
                key = Path(row["image"]).resolve()
                if self.verify_images:
                    open_image(row["image"])
                    key = hashlib.sha1(Path(row["image"]).read_bytes()).hexdigest()
            except ValueError as error:
                self._problem("unreadable_image", DatasetFormatError(f"{row['source']}: {error}"))
                continue
            first = seen.get(key)
            if first is not None:
                same_split = first["split"] == row["split"]
                kind = "duplicate_image" if same_split else "train_test_leak"
                what = "the same image as" if same_split else f"in {row['split']}, the same image as {first['split']}"
                self._problem(kind, DatasetFormatError(f"{row['source']}: {row['image']} is {what} {first['source']}"))
                if not same_split and row["split"] == "train":  # a leak keeps the training row
                    kept[kept.index(first)] = row
                    seen[key] = row
                continue
            seen[key] = row
            kept.append(row)
        self.rows = kept

    def build(self) -> tuple[datasets.Dataset, dict]:
        self._verify()
        if not self.rows:
            raise DatasetFormatError(f"{self.name}: no usable rows")
        columns = {key: [row[key] for row in self.rows] for key in RECORD_FEATURES}
        dataset = datasets.Dataset.from_dict(columns, features=RECORD_FEATURES)
        report = {
            "dataset": self.name,
            "rows": len(self.rows),
            "skipped": dict(self.skipped),
            "splits": dict(Counter(columns["split"])),
            "images_verified": self.verify_images,
        }
        return dataset, report


def _lines(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, encoding="utf-8-sig") as handle:  # -sig: a UTF-8 BOM is not part of the first line
        for number, line in enumerate(handle, start=1):
            if line.strip():
                yield number, line.split()


def _celeba_attribute_lines(attr_file: Path):
    """(line number, fields) of the image rows of a CelebA-layout attribute file (an image count, then the 40
    attribute names in CelebA's order, then one row per image); a wrong header is named with its line."""
    lines = _lines(attr_file)
    next(lines, None)  # the image count
    header_number, header = next(lines, (2, []))
    if list(header) != list(CELEBA_ATTRIBUTES):
        raise DatasetFormatError(f"{attr_file}:{header_number}: expected CelebA's 40 attribute names in order")
    yield from lines


def _csv_rows(path: Path, required: set[str]):
    """(line number, row dict) of a label CSV whose header must hold `required`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found")
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        missing = required - set(reader.fieldnames or [])
        if missing:
            raise DatasetFormatError(f"{path}:1: missing columns {sorted(missing)}")
        yield from enumerate(reader, start=2)


def _celeba_style(
    name, attr_file: Path, image_dir: Path, partition_file: Path | None, on_error: str, verify_images: bool = True
):
    partitions = {}
    if partition_file is not None and partition_file.is_file():
        for number, fields in _lines(partition_file):
            if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
                raise DatasetFormatError(f"{partition_file}:{number}: expected 'IMAGE 0|1|2', got {' '.join(fields)!r}")
            partitions[fields[0]] = SPLITS[int(fields[1])]
    collector = _Collector(name, on_error, verify_images)
    for number, fields in _celeba_attribute_lines(attr_file):

        def build(fields=fields, where=f"{attr_file}:{number}"):
            if len(fields) != 41:
                raise DatasetFormatError(f"{where}: expected an image name and 40 values, got {len(fields)} fields")
            if any(v not in ("1", "-1") for v in fields[1:]):
                raise DatasetFormatError(f"{where}: attribute values must be 1 or -1")
            labels = {a: int(v == "1") for a, v in zip(CELEBA_ATTRIBUTES, fields[1:])}
            labels["gender"] = "Male" if labels["Male"] else "Female"
            split = partitions.get(fields[0], hash_split(fields[0]) if not partitions else None)
            if split is None:
                raise DatasetFormatError(f"{where}: {fields[0]} is missing from {partition_file}")
            return image_dir / fields[0], labels, split

        collector.add(f"{attr_file}:{number}", build)
    return collector.build()


def read_celeba(root: str, on_error: str = "raise", verify_images: bool = True):
    """CelebA: list_attr_celeba.txt, list_eval_partition.txt, img_align_celeba/ (gender is taken from Male)."""
    root = Path(root)
    return _celeba_style(
        "celeba",
        root / "list_attr_celeba.txt",
        root / "img_align_celeba",
        root / "list_eval_partition.txt",
        on_error,
        verify_images,
    )


def read_lfwa(root: str, on_error: str = "raise", verify_images: bool = True):
    """LFWA in CelebA's text format: list_attr_lfwa.txt (same 40 attributes), lfw/ images, optional
    list_eval_partition.txt (else a stable hash split)."""
    root = Path(root)
    return _celeba_style(
        "lfwa", root / "list_attr_lfwa.txt", root / "lfw", root / "list_eval_partition.txt", on_error, verify_images
    )


def read_fairface(root: str, on_error: str = "raise", verify_images: bool = True):
    """FairFace: fairface_label_train.csv / fairface_label_val.csv (file, age, gender, race); the val file is the
    test split (FairFace ships no other)."""
    root = Path(root)
    collector = _Collector("fairface", on_error, verify_images)
    for csv_name, split in (("fairface_label_train.csv", "train"), ("fairface_label_val.csv", "test")):
        path = root / csv_name
        for number, row in _csv_rows(path, {"file", "age", "gender", "race"}):

            def build(row=row, where=f"{path}:{number}", split=split):
                if row["age"] not in FAIRFACE_AGES:
                    raise DatasetFormatError(f"{where}: unknown age {row['age']!r}")
                labels = {"age": FAIRFACE_AGES[row["age"]], "gender": row["gender"], "race": row["race"]}
                return root / row["file"], labels, split

            collector.add(f"{path}:{number}", build)
    return collector.build()


def read_utkface(root: str, on_error: str = "raise", verify_images: bool = True):
    """UTKFace: labels in file names AGE_GENDER_RACE_DATETIME.jpg (gender 0 male / 1 female; race 0 White, 1 Black,
    2 Asian, 3 Indian, 4 Others). Asian and Others have no single FairFace group, so race is unknown for them."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise FileNotFoundError(f"no UTKFace images in {root}")
    collector = _Collector("utkface", on_error, verify_images)
    for path in files:

        def build(path=path):
            parts = path.name.split("_")
            if len(parts) < 4 or not all(p.isdigit() for p in parts[:3]):
                raise DatasetFormatError(f"{path}: name is not AGE_GENDER_RACE_DATETIME.jpg")
            age, gender, race = map(int, parts[:3])
            if gender not in (0, 1) or race not in UTKFACE_RACES or age > 130:
                raise DatasetFormatError(f"{path}: unknown label in the name (age {age}, gender {gender}, race {race})")
            labels = {"age": age_bin(age), "gender": "Male" if gender == 0 else "Female"}
            if UTKFACE_RACES[race]:
                labels["race"] = UTKFACE_RACES[race]
            return path, labels, hash_split(path.name)

        collector.add(str(path), build)
    return collector.build()


def read_rafdb(root: str, on_error: str = "raise", aligned: bool = True, verify_images: bool = True):
    """RAF-DB basic: EmoLabel/list_patition_label.txt ('train_00001.jpg 5', labels 1..7) and Image/aligned/
    (NAME_aligned.jpg) or Image/original/."""
    root = Path(root)
    label_file = root / "EmoLabel" / "list_patition_label.txt"
    collector = _Collector("rafdb", on_error, verify_images)
    for number, fields in _lines(label_file):

        def build(fields=fields, where=f"{label_file}:{number}"):
            if len(fields) != 2 or not fields[1].isdigit():
                raise DatasetFormatError(f"{where}: expected 'IMAGE LABEL', got {' '.join(fields)!r}")
            if int(fields[1]) not in RAFDB_EXPRESSIONS:
                raise DatasetFormatError(f"{where}: unknown expression label {fields[1]} (RAF-DB basic uses 1..7)")
            stem = Path(fields[0]).stem
            image = (
                root
                / "Image"
                / ("aligned" if aligned else "original")
                / (f"{stem}_aligned.jpg" if aligned else fields[0])
            )
            split = "train" if stem.startswith("train") else "test" if stem.startswith("test") else None
            if split is None:
                raise DatasetFormatError(f"{where}: image name must start with train or test")
            return image, {"expression": RAFDB_EXPRESSIONS[int(fields[1])]}, split

        collector.add(f"{label_file}:{number}", build)
    return collector.build()


def read_affectnet(root: str, on_error: str = "raise", num_expressions: int = 7, verify_images: bool = True):
    """AffectNet: training.csv / validation.csv (subDirectory_filePath, expression) with images under
    Manually_Annotated_Images/. Labels 0..6 map onto the 7 basic expressions; 7 (Contempt) needs
    num_expressions=8 and a schema that has it; 8..10 (None, Uncertain, Non-Face) are not expressions: those rows
    are skipped and counted."""
    root = Path(root)
    collector = _Collector("affectnet", on_error, verify_images)
    for csv_name, split in (("training.csv", "train"), ("validation.csv", "test")):
        path = root / csv_name
        for number, row in _csv_rows(path, {"subDirectory_filePath", "expression"}):
            value = (row["expression"] or "").strip()  # a short row leaves it None: build() names the line
            if value.isdigit() and int(value) >= 8:
                collector.skip("not_an_expression")
                continue
            if value == "7" and num_expressions == 7:
                collector.skip("contempt_with_7_expressions")
                continue

            def build(row=row, where=f"{path}:{number}", split=split, value=value):
                if not value.isdigit():
                    raise DatasetFormatError(f"{where}: expression {value!r} is not a number")
                if not (row["subDirectory_filePath"] or "").strip():
                    raise DatasetFormatError(f"{where}: no subDirectory_filePath (a short row?)")
                image = root / "Manually_Annotated_Images" / row["subDirectory_filePath"].strip()
                return image, {"expression": AFFECTNET_EXPRESSIONS[int(value)]}, split

            collector.add(f"{path}:{number}", build)
    return collector.build()


def read_celebamask_hq(root: str, on_error: str = "raise", verify_images: bool = True):
    """CelebAMask-HQ: photos with parsing maps (see faceinsight.parsing.celebamask), plus the 40 attributes when
    CelebAMask-HQ-attribute-anno.txt is there (CelebA's format). Split: a stable hash split."""
    from faceinsight.parsing.celebamask import CelebAMaskHQ

    root = Path(root)
    masks = CelebAMaskHQ(root)
    attributes = {}
    attr_file = root / "CelebAMask-HQ-attribute-anno.txt"
    collector = _Collector("celebamask_hq", on_error, verify_images)
    if attr_file.is_file():
        for number, fields in _celeba_attribute_lines(attr_file):
            where = f"{attr_file}:{number}"
            if len(fields) != 41 or any(v not in ("1", "-1") for v in fields[1:]):
                collector._problem(
                    "DatasetFormatError",
                    DatasetFormatError(f"{where}: expected an image name and 40 values of 1 or -1"),
                )
                continue
            attributes[Path(fields[0]).stem] = {a: int(v == "1") for a, v in zip(CELEBA_ATTRIBUTES, fields[1:])}
    for position in range(len(masks)):
        image = masks.image_path(position)

        def build(position=position, image=image):
            labels = dict(attributes.get(image.stem, {}))
            if labels:
                labels["gender"] = "Male" if labels["Male"] else "Female"
            return image, labels, hash_split(image.name), masks.label_map(position)

        collector.add(str(image), build)
    return collector.build()


def from_hf_dataset(
    dataset: datasets.Dataset, image_column: str = "image", split: str = "train", on_error: str = "raise"
):
    """Any `datasets` dataset with an image column and label columns named like our facets (CelebA attribute names,
    age, gender, race, expression); a `parsing_map` column is used when present."""
    label_columns = [c for c in dataset.column_names if c in CELEBA_ATTRIBUTES or c in DEFAULT_CATEGORICAL_FACETS]
    if image_column not in dataset.column_names:
        raise DatasetFormatError(f"dataset has no {image_column!r} column (columns: {dataset.column_names})")
    if not label_columns:
        raise DatasetFormatError(f"dataset has no label columns named like the schema's facets: {dataset.column_names}")

    def convert(row, index):
        labels = {c: (int(row[c]) if c in CELEBA_ATTRIBUTES else row[c]) for c in label_columns if row[c] is not None}
        check_labels(labels, f"row {index}")
        parsing_map = row.get("parsing_map")
        return {
            "image": row[image_column],
            "parsing_map": parsing_map,
            "labels": json.dumps(labels),
            "split": row.get("split", split),
            "source": f"row {index}",
        }

    # in memory: a dataset saved with save_to_disk may sit in a read-only folder, and map would write a cache there
    converted = dataset.map(
        convert, with_indices=True, remove_columns=dataset.column_names, features=RECORD_FEATURES, keep_in_memory=True
    )
    return converted, {"dataset": "hf", "rows": len(converted), "skipped": {}}


# The paper's protocol on synthetic faces: each part labels one task only, as the real datasets do (CelebA/LFWA the
# attributes, with gender from Male; FairFace/UTKFace age, gender and race; RAF-DB/AffectNet the expression)
SYNTHETIC_TASKS = {
    "attributes": ("gender",),  # and every binary attribute
    "age_gender_race": ("age", "gender", "race"),
    "expression": ("expression",),
}


def task_labels(labels: dict, task: str | None) -> dict:
    """The labels a dataset of `task` (a SYNTHETIC_TASKS key; None: every task) has of a face."""
    if task is None:
        return labels
    kept = SYNTHETIC_TASKS[task]
    attributes = task == "attributes"
    return {k: v for k, v in labels.items() if k in kept or (attributes and k not in DEFAULT_CATEGORICAL_FACETS)}


def synthetic_faces(
    num_faces: int, seed: int = 0, size: int = 64, split: str = "train", start: int = 0, task: str | None = None
) -> tuple[datasets.Dataset, dict]:
    """`num_faces` synthetic faces (see training/synthetic.py) as records; disjoint streams per split. The same
    arguments give the same faces, drawn once per process (the demo's trainings and its scoring share them). `task`
    (a SYNTHETIC_TASKS key) keeps only that task's labels, as a dataset of one task has them."""
    records = _synthetic_faces(num_faces, seed, size, split, start)
    if task is not None:
        if task not in SYNTHETIC_TASKS:
            raise ValueError(f"synthetic:{task}: unknown task; choose one of {', '.join(SYNTHETIC_TASKS)}")
        records = records.map(
            lambda labels: {"labels": json.dumps(task_labels(json.loads(labels), task))},
            input_columns="labels",
            keep_in_memory=True,
        )
    name = "synthetic" if task is None else f"synthetic:{task}"
    return records, {"dataset": name, "rows": num_faces}


@functools.lru_cache(maxsize=32)
def _synthetic_faces(num_faces: int, seed: int, size: int, split: str, start: int) -> datasets.Dataset:
    from PIL import Image

    from faceinsight.training.synthetic import synthetic_face

    stream = {"train": 0, "validation": 1, "test": 2}[split]
    indices = range(start, start + num_faces)
    faces = [synthetic_face(index, seed=seed * 10 + stream, size=size) for index in indices]
    columns = {
        "image": [face["image"] for face in faces],
        "parsing_map": [Image.fromarray(face["parsing_map"].astype(np.uint8)) for face in faces],
        "labels": [json.dumps(face["labels"]) for face in faces],
        "split": [split] * len(faces),
        "source": [f"synthetic:{seed}:{split}:{index}" for index in indices],
    }
    return datasets.Dataset.from_dict(columns, features=RECORD_FEATURES)


MAAD_FACE_VALUES = {"1": 1, "-1": 0, "0": None}  # MAAD-Face marks an attribute it could not decide with 0


def read_maadface(root: str, on_error: str = "raise", verify_images: bool = True):
    """MAAD-Face in its original layout beside VGGFace2's images: MAAD_Face.csv (Filename, Identity, then the 47
    attributes as 1 / -1 / 0 for undecided, which is left unknown) and the images under train/ and test/ (VGGFace2's
    split, by identity), a file's folder giving its split. Gender is taken from Male, as for CelebA."""
    root = Path(root)
    path = root / "MAAD_Face.csv"
    collector = _Collector("maadface", on_error, verify_images)
    rows = _csv_rows(path, {"Filename", "Identity", *MAAD_FACE_ATTRIBUTES})
    for number, row in rows:

        def build(row=row, where=f"{path}:{number}"):
            labels = {}
            for name in MAAD_FACE_ATTRIBUTES:
                value = (row[name] or "").strip()
                if value not in MAAD_FACE_VALUES:
                    raise DatasetFormatError(f"{where}: attribute {name} must be 1, -1 or 0, got {value!r}")
                if MAAD_FACE_VALUES[value] is not None:
                    labels[name] = MAAD_FACE_VALUES[value]
            if "Male" in labels:
                labels["gender"] = "Male" if labels["Male"] else "Female"
            name = (row["Filename"] or "").strip()
            if not name:
                raise DatasetFormatError(f"{where}: empty Filename")
            for split in ("train", "test"):
                if (root / split / name).is_file():
                    return root / split / name, labels, split
            raise FileNotFoundError(f"{where}: image {name} not found under {root / 'train'} or {root / 'test'}")

        collector.add(f"{path}:{number}", build)
    return collector.build()


READERS = {
    "maadface": read_maadface,
    "celeba": read_celeba,
    "lfwa": read_lfwa,
    "fairface": read_fairface,
    "utkface": read_utkface,
    "rafdb": read_rafdb,
    "affectnet": read_affectnet,
    "celebamask_hq": read_celebamask_hq,
}


def parsing_maps_index(maps_dir: str | Path, flag: str = "--parsing_maps_dir") -> dict[str, Path]:
    """{resolved image path: its label map} from what `faceinsight parse` wrote (NAME.json names the image,
    NAME_labels.png is its map)."""
    maps_dir = Path(maps_dir)
    if not maps_dir.is_dir():
        raise FileNotFoundError(f"{flag} {maps_dir}: no such folder")
    index = {}
    for stats in sorted(maps_dir.glob("*.json")):
        label_map = stats.with_name(f"{stats.stem}_labels.png")
        try:
            image = json.loads(stats.read_text(encoding="utf-8"))["image"]
        except (ValueError, KeyError, TypeError, OSError):
            continue  # not a file `faceinsight parse` wrote
        if label_map.is_file():
            index[str(Path(image).resolve())] = label_map
    if not index:
        raise FileNotFoundError(f"{flag} {maps_dir}: no maps written by `faceinsight parse` in it")
    return index


def attach_parsing_maps(records: datasets.Dataset, maps_dir: str | Path, flag: str = "--parsing_maps_dir"):
    """`records` with the maps `faceinsight parse` wrote into `maps_dir` for every image that has no map of its own
    in the dataset, so that training and evaluation never run the parser on them. Every such image needs a map."""
    index = parsing_maps_index(maps_dir, flag)
    raw = records.cast_column("image", datasets.Image(decode=False)).cast_column(
        "parsing_map", datasets.Image(decode=False)
    )
    maps, missing = [], []
    for image, own in zip(raw["image"], raw["parsing_map"]):
        if own is not None:
            maps.append(own)
            continue
        path = image.get("path") if image else None
        found = index.get(str(Path(path).resolve())) if path else None
        if found is None:
            missing.append(path or "(an image held as bytes)")
        maps.append({"path": str(found), "bytes": None} if found else None)
    if missing:
        raise FileNotFoundError(
            f"{flag} {maps_dir}: no map for {len(missing)} of {len(maps)} images (first: {missing[0]}); run "
            f"`faceinsight parse` over them"
        )
    return records.remove_columns("parsing_map").add_column("parsing_map", maps, feature=datasets.Image())


def read_named_dataset(
    name: str,
    dataset_dir: str | None,
    on_error: str = "raise",
    flag: str = "--dataset_name",
    verify_images: bool = True,
) -> tuple[datasets.Dataset, dict]:
    """All records of a dataset given by name (an adapter, read from `dataset_dir`) or as a folder saved with
    datasets' `save_to_disk`; `flag` names the command-line argument in errors. Synthetic faces are not read here:
    they are generated per split (`synthetic_faces`)."""
    if name in READERS:
        if not dataset_dir:
            raise ValueError(f"{flag} {name} needs --dataset_dir (the dataset's root folder)")
        if not Path(dataset_dir).is_dir():
            raise FileNotFoundError(f"--dataset_dir {dataset_dir}: no such folder")
        return READERS[name](dataset_dir, on_error=on_error, verify_images=verify_images)
    if Path(name).is_dir():
        return from_hf_dataset(datasets.load_from_disk(name), on_error=on_error)
    raise ValueError(
        f"unknown dataset {name!r}; choose synthetic, {', '.join(READERS)} or a folder saved with "
        "datasets' save_to_disk"
    )
