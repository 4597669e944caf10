"""Nothing lost, nothing leaked, nothing run unchecked: output folders, publishing, remote code, hostile images and
datasets, resume and disk faults, and the command line's one error path. Every input is made here, small."""

import errno
import json
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

import pytest
from PIL import Image

from faceinsight.commands import main
from faceinsight.folders import LOCK, MARKER, OutputDirError, output_dir
from faceinsight.training import face_datasets as fd


def _png(path, width, height, data: bytes | None = None):
    """A PNG of `width` x `height` 1-bit pixels written row by row (a 20000 x 20000 one takes a few MB of memory);
    `data` replaces the compressed pixels (a short `data` gives a file that declares more than it holds)."""

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    if data is None:
        compressor, row, parts = zlib.compressobj(9), b"\x00" * (1 + (width + 7) // 8), []
        for _ in range(height):
            parts.append(compressor.compress(row))
        data = b"".join(parts) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b""))
    return path


# -- output folders -----------------------------------------------------------------------------------------------
def test_a_folder_someone_else_wrote_is_never_touched(tmp_path, capsys):
    folder = tmp_path / "mine"
    (folder / "work").mkdir(parents=True)
    (folder / "src").mkdir()
    (folder / "src" / "thesis.tex").write_text("years of work")
    assert main(["demo", "--quick", "--output_dir", str(folder), "--overwrite"]) == 2
    assert "not by faceinsight" in capsys.readouterr().err
    assert (folder / "src" / "thesis.tex").read_text() == "years of work" and (folder / "work").is_dir()
    assert sorted(p.name for p in folder.iterdir()) == ["src", "work"]  # no marker, no lock left behind


def test_a_command_replaces_only_its_own_output_and_only_when_asked(tmp_path, capsys):
    folder = tmp_path / "out"
    with output_dir(folder, "demo", patterns=("model", "*.png")):
        (folder / "model").mkdir()
        (folder / "results.png").write_bytes(b"png")
    (folder / "notes.txt").write_text("added by the user later")
    with pytest.raises(OutputDirError, match="holds an earlier faceinsight demo output; pass --overwrite"):
        with output_dir(folder, "demo", patterns=("model", "*.png")):
            pass
    with pytest.raises(OutputDirError, match="written by faceinsight demo"):  # another command never writes there
        with output_dir(folder, "eval"):
            pass
    with output_dir(folder, "demo", overwrite=True, patterns=("model", "*.png")):
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["notes.txt"]
    assert "kept 1 entries" in capsys.readouterr().err and not (folder / LOCK).exists()


def test_a_second_run_on_a_held_folder_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    folder = tmp_path / "out"
    with output_dir(folder, "train"):
        with pytest.raises(OutputDirError, match=rf"in use by faceinsight train \(pid {os.getpid()}"):
            with output_dir(folder, "train", reuse=True):
                pass
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    holder = json.loads((folder / MARKER).read_text()) | {"pid": int(dead.stdout), "host": os.uname().nodename}
    (folder / LOCK).write_text(json.dumps(holder))  # what a run killed with SIGKILL leaves
    with output_dir(folder, "train", reuse=True):
        pass
    assert "was left by a run that is gone" in capsys.readouterr().err


@pytest.mark.slow
def test_two_train_runs_on_one_output_folder(tiny_folder, tmp_path):
    out = tmp_path / "run"
    train = [
        sys.executable,
        "-m",
        "faceinsight.commands",
        "train",
        "--model_name_or_path",
        str(tiny_folder),
        "--output_dir",
        str(out),
        "--num_train_faces",
        "64",
        "--num_eval_faces",
        "0",
        "--max_steps",
        "400",
        "--per_device_train_batch_size",
        "4",
        "--save_strategy",
        "no",
    ]
    first = subprocess.Popen(train, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / LOCK).exists():
            assert first.poll() is None and time.time() < deadline
            time.sleep(0.05)
        second = subprocess.run(train, capture_output=True, text=True, timeout=300)
        assert second.returncode == 2
        assert f"is in use by faceinsight train (pid {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1  # one line, no traceback
    finally:
        first.kill()
        first.wait()


# -- publishing -----------------------------------------------------------------------------------------------------
def test_push_never_publishes_secrets_hidden_files_or_links_out_of_the_folder(tiny_folder, tmp_path, capsys):
    folder = tmp_path / "model"
    shutil.copytree(tiny_folder, folder)
    (folder / ".env").write_text("HF_TOKEN=hf_secret")
    (folder / "hf_token").write_text("hf_secret")
    (folder / "id_rsa").write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    (folder / "passwd.txt").symlink_to("/etc/passwd")
    (folder / "checkpoint-5").mkdir()
    (folder / "training_args.bin").write_bytes(b"pickle")
    assert main(["push", str(folder), "--repo-id", "org/fi", "--dry-run"]) == 0
    printed = capsys.readouterr().out
    for name, reason in (
        (".env", "hidden file"),
        ("hf_token", "looks like a credential"),
        ("id_rsa", "looks like a credential"),
        ("passwd.txt", "symlink out of the folder"),
        ("checkpoint-5/", "training checkpoint"),
        ("training_args.bin", "trainer leftover"),
    ):
        assert f"leaves out {name}: {reason}" in printed, name
    uploads = printed.split("uploads ", 1)[1].splitlines()[0]
    assert not any(secret in uploads for secret in (".env", "hf_token", "id_rsa", "passwd", "training_args"))


def test_a_folder_whose_code_differs_is_refused_before_any_of_it_runs(tiny_folder, tmp_path, capsys):
    folder, witness = tmp_path / "model", tmp_path / "code_ran"
    shutil.copytree(tiny_folder, folder)
    with open(folder / "modeling_faceinsight.py", "a") as code:
        code.write(f"\nimport pathlib\npathlib.Path({str(witness)!r}).write_text('ran')\n")
    assert main(["push", str(folder), "--repo-id", "org/fi", "--dry-run"]) == 1
    assert "modeling_faceinsight.py differs from the installed faceinsight's own" in capsys.readouterr().out
    assert main(["ask", str(folder), "assets/astronaut_face.png", "Age?", "--max-new-tokens", "2"]) == 0
    assert "running the installed code, not the folder's" in capsys.readouterr().err
    assert not witness.exists()


# -- hostile images ------------------------------------------------------------------------------------------------
@pytest.fixture
def hostile_images(tmp_path, face_image):
    folder = tmp_path / "images"
    folder.mkdir()
    _png(folder / "tiny_file_huge_image.png", 13000, 13000, data=zlib.compress(b"\x00" * 64))  # 100-odd bytes
    _png(folder / "bomb.png", 20000, 20000)  # a real, complete 20000 x 20000 PNG
    face_image.save(folder / "face.jpg")
    (folder / "truncated.jpg").write_bytes((folder / "face.jpg").read_bytes()[:600])
    Image.new("RGB", (1, 5000), (120, 90, 80)).save(folder / "strip.png")
    return folder


def test_parse_skips_and_counts_every_hostile_image_and_parses_the_rest(hostile_images, tmp_path, capsys):
    out = tmp_path / "maps"
    assert main(["parse", str(hostile_images), "--output", str(out)]) == 1  # some failed: reported, not fatal
    err = capsys.readouterr()
    assert "parsed 2 image(s)" in err.out and "3 failed" in err.out
    assert "tiny_file_huge_image.png declares 13000x13000 = 169 megapixels, over the cap" in err.err
    assert "bomb.png" in err.err and "truncated.jpg is not a readable image" in err.err
    assert (out / "face_labels.png").exists() and (out / "strip_labels.png").exists()  # the 1 x 5000 strip too
    assert Image.open(out / "strip_labels.png").size == (1, 5000)


@pytest.mark.parametrize("name", ["tiny_file_huge_image.png", "bomb.png", "truncated.jpg"])
def test_ask_names_a_hostile_image_in_one_line(tiny_folder, hostile_images, name, capsys):
    assert main(["ask", str(tiny_folder), str(hostile_images / name), "Age?"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("faceinsight ask: error: image") and name in err


# -- datasets -------------------------------------------------------------------------------------------------------
def _rafdb(root, rows):
    (root / "EmoLabel").mkdir(parents=True, exist_ok=True)
    (root / "Image" / "aligned").mkdir(parents=True, exist_ok=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(f"{n} {label}" for n, label in rows) + "\n")
    for index, (name, _) in enumerate(rows):
        Image.new("RGB", (16, 16), (10 * index, 80, 90)).save(
            root / "Image" / "aligned" / name.replace(".jpg", "_aligned.jpg")
        )


def test_a_corrupt_image_is_found_up_front_with_its_file_and_line(tmp_path):
    _rafdb(tmp_path, [("train_00001.jpg", 1), ("train_00002.jpg", 4), ("test_0001.jpg", 7)])
    (tmp_path / "Image" / "aligned" / "train_00002_aligned.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    with pytest.raises(
        fd.DatasetFormatError,
        match=r"list_patition_label.txt:2: image .*train_00002_aligned.jpg is "
        r"not a readable image",
    ):
        fd.read_rafdb(tmp_path)
    dataset, report = fd.read_rafdb(tmp_path, on_error="skip")
    assert report["rows"] == 2 and report["skipped"] == {"unreadable_image": 1}


def test_duplicates_and_train_test_leaks_are_found(tmp_path):
    _rafdb(tmp_path, [("train_00001.jpg", 1), ("train_00002.jpg", 4), ("test_0001.jpg", 7)])
    aligned = tmp_path / "Image" / "aligned"
    shutil.copyfile(aligned / "train_00001_aligned.jpg", aligned / "test_0001_aligned.jpg")  # same bytes: a leak
    with pytest.raises(
        fd.DatasetFormatError,
        match=r":3: .*test_0001_aligned.jpg is in test, the same image as "
        r"train .*:1",
    ):
        fd.read_rafdb(tmp_path)
    dataset, report = fd.read_rafdb(tmp_path, on_error="skip")
    assert report["skipped"] == {"train_test_leak": 1} and report["splits"] == {"train": 2}
    labels = tmp_path / "EmoLabel" / "list_patition_label.txt"
    labels.write_text(labels.read_text() + "train_00001.jpg 1\n")  # the same row twice
    _, report = fd.read_rafdb(tmp_path, on_error="skip")
    assert report["skipped"] == {"train_test_leak": 1, "duplicate_image": 1}


def test_a_utf8_bom_is_read_as_text(tmp_path):
    (tmp_path / "fairface_label_train.csv").write_bytes(
        b"\xef\xbb\xbffile,age,gender,race\ntrain/1.jpg,20-29,Female,Black\n"
    )
    (tmp_path / "fairface_label_val.csv").write_bytes(b"\xef\xbb\xbffile,age,gender,race\nval/1.jpg,3-9,Male,White\n")
    for index, name in enumerate(("train/1.jpg", "val/1.jpg")):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.new("RGB", (8, 8), (index * 90, 0, 0)).save(tmp_path / name)
    _, report = fd.read_fairface(tmp_path)
    assert report["splits"] == {"train": 1, "test": 1}


def test_celebamask_attributes_are_checked_header_and_values(tmp_path):
    from faceinsight.modeling.configuration_faceinsight import CELEBA_ATTRIBUTES

    (tmp_path / "CelebA-HQ-img").mkdir()
    (tmp_path / "CelebAMask-HQ-mask-anno" / "0").mkdir(parents=True)
    Image.new("RGB", (32, 32), (90, 80, 70)).save(tmp_path / "CelebA-HQ-img" / "0.jpg")
    Image.new("L", (32, 32), 255).save(tmp_path / "CelebAMask-HQ-mask-anno" / "0" / "00000_skin.png")
    values = ["1"] + ["-1"] * 39
    attr = tmp_path / "CelebAMask-HQ-attribute-anno.txt"
    attr.write_text("1\n" + " ".join(CELEBA_ATTRIBUTES) + "\n0.jpg " + " ".join(values) + "\n")
    dataset, _ = fd.read_celebamask_hq(tmp_path)
    assert json.loads(dataset[0]["labels"])["5_o_Clock_Shadow"] == 1
    attr.write_text("1\n" + " ".join(CELEBA_ATTRIBUTES) + "\n0.jpg " + " ".join(["0"] + values[1:]) + "\n")
    with pytest.raises(
        fd.DatasetFormatError,
        match=r"CelebAMask-HQ-attribute-anno.txt:3: expected an image name and "
        r"40 values of 1 or -1",
    ):
        fd.read_celebamask_hq(tmp_path)
    attr.write_text("1\nSmiling Male\n0.jpg " + " ".join(values) + "\n")
    with pytest.raises(fd.DatasetFormatError, match=r"attribute-anno.txt:2: expected CelebA's 40 attribute names"):
        fd.read_celebamask_hq(tmp_path)


def test_affectnet_short_rows_are_named_by_line(tmp_path):
    (tmp_path / "Manually_Annotated_Images" / "1").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "Manually_Annotated_Images" / "1" / "a.jpg")
    (tmp_path / "training.csv").write_text("subDirectory_filePath,expression\n1/a.jpg,1\n1/b.jpg\n,3\n")
    (tmp_path / "validation.csv").write_text("subDirectory_filePath,expression\n")
    with pytest.raises(fd.DatasetFormatError, match=r"training.csv:3: expression '' is not a number"):
        fd.read_affectnet(tmp_path)
    _, report = fd.read_affectnet(tmp_path, on_error="skip")
    assert report["rows"] == 1 and report["skipped"] == {"DatasetFormatError": 2}


def test_a_dataset_in_a_read_only_folder_is_read_without_writing_there(tmp_path):
    import datasets

    folder = tmp_path / "saved"
    images = [Image.new("RGB", (8, 8), (i * 40, 0, 0)) for i in range(3)]
    datasets.Dataset.from_dict({"image": images, "Smiling": [1, 0, 1]}).save_to_disk(str(folder))
    before = sorted(p.name for p in folder.iterdir())
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        records, report = fd.read_named_dataset(str(folder), None)
    finally:
        for path in [folder, *folder.iterdir()]:
            path.chmod(0o755 if path.is_dir() else 0o644)
    assert report["rows"] == 3 and sorted(p.name for p in folder.iterdir()) == before


def test_training_on_a_folder_without_training_rows_says_so(tiny_folder, tmp_path, capsys):
    _rafdb(tmp_path / "raf", [("test_0001.jpg", 7), ("test_0002.jpg", 1)])
    assert (
        main(
            [
                "train",
                "--model_name_or_path",
                str(tiny_folder),
                "--dataset_name",
                "rafdb",
                "--dataset_dir",
                str(tmp_path / "raf"),
                "--output_dir",
                str(tmp_path / "out"),
                "--max_steps",
                "1",
            ]
        )
        == 2
    )
    assert "no training rows" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_eval_with_skip_counts_what_it_skipped(tiny_folder, tmp_path, capsys):
    _rafdb(
        tmp_path / "raf", [("train_00001.jpg", 1), ("train_00002.jpg", 4), ("test_0001.jpg", 7), ("test_0002.jpg", 4)]
    )
    (tmp_path / "raf" / "Image" / "aligned" / "test_0002_aligned.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "eval"
    assert (
        main(
            [
                "eval",
                "--model",
                str(tiny_folder),
                "--dataset",
                "rafdb",
                "--dataset_dir",
                str(tmp_path / "raf"),
                "--output_dir",
                str(out),
                "--max_new_tokens",
                "2",
                "--on_error",
                "skip",
            ]
        )
        == 0
    )
    assert "skipped while reading rafdb: {'unreadable_image': 1}" in capsys.readouterr().out
    assert json.loads((out / "eval_report.json").read_text())["data"]["skipped"] == {"unreadable_image": 1}


def test_reserved_tokens_in_text_and_prompts_over_the_context_are_named(tiny_folder, tmp_path, capsys):
    face = "assets/astronaut_face.png"
    assert main(["ask", str(tiny_folder), face, "What does <parsing> mean?"]) == 2
    assert "the reserved parsing placeholder" in capsys.readouterr().err
    assert main(["ask", str(tiny_folder), face, "Age?", "--max-new-tokens", "5000"]) == 2
    assert "over the language model's context of 2048" in capsys.readouterr().err


@pytest.mark.parametrize(
    "command",
    [
        ["ask", "./no/such/folder", "assets/astronaut_face.png", "hi"],
        ["eval", "--model", "/no/such/folder"],
        ["push", "no_such_folder", "--repo-id", "org/fi", "--dry-run"],
        ["merge", "./no_such_adapter", "--output_dir", "out"],
        ["build", "out", "--vision", "./no/vision", "--text", "./no/text"],
    ],
)
def test_a_missing_folder_is_named_at_once(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no such folder" in err


def test_an_unknown_hub_id_is_one_line_without_retries(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # answered from the environment, before any request is tried
    assert main(["ask", "org/no-such-model", "assets/astronaut_face.png", "hi"]) == 2
    assert capsys.readouterr().err.strip() == (
        "faceinsight ask: error: model org/no-such-model is not a folder here, "
        "and the Hub is switched off (HF_HUB_OFFLINE)"
    )


# -- resume and disk faults -----------------------------------------------------------------------------------------
def test_resume_passes_over_a_checkpoint_with_a_truncated_state(tmp_path, capsys):
    from faceinsight.training.train import latest_complete_checkpoint, resolve_resume

    for step in (5, 10, 15):
        (tmp_path / f"checkpoint-{step}").mkdir()
        (tmp_path / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (tmp_path / "checkpoint-15" / "trainer_state.json").write_text('{"global_st')  # cut off by a full disk
    assert latest_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert "passing over" in capsys.readouterr().out
    with pytest.raises(ValueError, match="checkpoint-15 is incomplete"):
        resolve_resume(str(tmp_path / "checkpoint-15"), str(tmp_path))


def test_a_full_disk_is_one_line(tmp_path, monkeypatch, capsys):
    import faceinsight.hub.export as export

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "model.safetensors"))

    monkeypatch.setattr(export, "save_model_folder", full)
    assert main(["build", str(tmp_path / "out"), "--preset", "tiny"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == f"faceinsight build: error: the disk is full (writing {tmp_path / 'out' / 'model.safetensors'}); "
        "free space and run again"
    )


def test_any_failure_is_one_line_and_debug_shows_the_traceback(tmp_path, monkeypatch, capsys):
    import faceinsight.hub.build as build

    def broken(*args, **kwargs):
        raise RuntimeError("something inside went wrong\nwith more detail")

    monkeypatch.setattr(build, "build_tiny", broken)
    assert main(["build", str(tmp_path / "out"), "--preset", "tiny"]) == 2
    assert capsys.readouterr().err == "faceinsight build: error: RuntimeError: something inside went wrong\n"
    with pytest.raises(RuntimeError):
        main(["build", str(tmp_path / "out2"), "--preset", "tiny", "--debug"])
