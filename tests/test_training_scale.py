"""Interrupted training resumes exactly; data-parallel processes and gradient accumulation train exactly what one
process with the same global batch trains."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

TRAIN = [sys.executable, "-m", "faceinsight.commands", "train"]
# the launcher installed beside this interpreter (found whether or not its folder is on PATH)
ACCELERATE = Path(sys.executable).with_name("accelerate")


def _args(folder, **overrides):
    args = {
        "model_name_or_path": folder,
        "num_train_faces": 128,
        "num_eval_faces": 8,
        "learning_rate": 3e-3,
        "save_steps": 5,
        "logging_steps": 5,
        "seed": 0,
        "dataloader_drop_last": "true",
        "per_device_train_batch_size": 8,
        **overrides,
    }
    return [item for key, value in args.items() for item in (f"--{key}", str(value))]


def _weights(folder):
    return load_file(os.path.join(folder, "model.safetensors"))


def _relative_distance(a, b, base):
    num = sum(((a[k].float() - b[k].float()) ** 2).sum() for k in a if k in base)
    den = sum(((a[k].float() - base[k].float()) ** 2).sum() for k in a if k in base)
    return float((num / den).sqrt())


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_weights(tiny_folder, tmp_path):
    reference, interrupted = tmp_path / "reference", tmp_path / "interrupted"
    common = _args(tiny_folder, max_steps=30)
    subprocess.run([*TRAIN, *common, "--output_dir", str(reference)], check=True, capture_output=True, timeout=600)
    run = subprocess.Popen(
        [*TRAIN, *common, "--output_dir", str(interrupted)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 300
    while not (interrupted / "checkpoint-10" / "trainer_state.json").exists():
        assert run.poll() is None and time.time() < deadline, "the run ended before its second checkpoint"
        time.sleep(0.02)
    run.send_signal(signal.SIGKILL)
    run.wait()
    assert not (interrupted / "model.safetensors").exists()  # it really was cut off
    (interrupted / "checkpoint-999").mkdir()  # a half-written checkpoint (no trainer_state.json) is passed over
    subprocess.run(
        [*TRAIN, *common, "--output_dir", str(interrupted), "--resume_from_checkpoint", "true"],
        check=True,
        capture_output=True,
        timeout=600,
    )
    a, b = _weights(reference), _weights(interrupted)
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) <= 1e-6


@pytest.mark.slow
@pytest.mark.skipif(not ACCELERATE.exists(), reason="needs the accelerate launcher beside the interpreter")
def test_two_processes_and_accumulation_match_one_process(tiny_folder, tmp_path):
    """SGD makes the comparison meaningful (Adam's first steps are sign-like and amplify float noise). Every face's
    knowledge tokens are teacher-forced: which faces are drawn is random per step, as dropout is, and the draws of one
    process and of two differ."""
    common = _args(tiny_folder, max_steps=8, optim="sgd", learning_rate=0.2, knowledge_teacher_forcing=1)
    one = tmp_path / "one"
    subprocess.run(
        [*TRAIN, *common, "--per_device_train_batch_size", "8", "--output_dir", str(one)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    accumulated = tmp_path / "accumulated"
    subprocess.run(
        [
            *TRAIN,
            *common,
            "--per_device_train_batch_size",
            "4",
            "--gradient_accumulation_steps",
            "2",
            "--output_dir",
            str(accumulated),
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    two = tmp_path / "two"
    launcher = [
        str(ACCELERATE),
        "launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "-m",
        "faceinsight.commands",
        "train",
    ]
    result = subprocess.run(
        [*launcher, *common, "--per_device_train_batch_size", "4", "--output_dir", str(two)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (
        result.stderr.count("knowledge from 128 training samples")
        + result.stdout.count("knowledge from 128 training samples")
        == 2
    )  # two processes really ran
    base, reference = _weights(tiny_folder), _weights(one)
    assert _relative_distance(reference, _weights(two), base) < 1e-4  # measured: 4e-7
    assert _relative_distance(reference, _weights(accumulated), base) < 1e-4
