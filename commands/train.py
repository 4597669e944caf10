"""`faceinsight train`: supervised fine-tuning of a FaceInsight folder with TRL's SFTTrainer on the whole objective
(LM + BCE + logic), in the shape of TRL's `sft_vlm.py`: every knob a flag from a dataclass (FaceInsight's options,
TRL's `SFTConfig`, TRL's `ModelConfig` for the model and LoRA), or a YAML file (`--config`, flags win).

    # the synthetic faces, stage 2 (LoRA on the LM attention, projectors and knowledge head in full)
    faceinsight train --model_name_or_path outputs/tiny --output_dir outputs/run --max_steps 500 \
        --learning_rate 3e-3 --per_device_train_batch_size 16

    # a dataset in its original layout, the example config of stage 1
    faceinsight train --config examples/stage1.yaml --model_name_or_path outputs/fi --output_dir outputs/s1 \
        --dataset_name celeba --dataset_dir CelebA/

    # several GPUs
    accelerate launch --config_file examples/accelerate_fsdp.yaml -m faceinsight.commands train \
        --config examples/stage2.yaml --model_name_or_path outputs/fi --output_dir outputs/s2 --bf16 true
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from trl import ModelConfig, SFTConfig

from faceinsight.training.train import LM_ATTENTION, STAGES, FaceInsightScriptArguments

USAGE = (
    "faceinsight train --model_name_or_path DIR --output_dir OUT [--config train.yaml] "
    "[--dataset_name NAME --dataset_dir ROOT] [--stage stage1|stage2] [--max_steps N] [options]"
)
DEFAULT_LEARNING_RATE = 2e-4  # LLaVA-1.5's LoRA rate; TRL's 2e-5 barely moves the new projectors and knowledge head
# what a training run writes into its output folder: the only entries --overwrite replaces
TRAIN_ENTRIES = (
    "checkpoint-*",
    "adapter",
    "runs",
    "*.safetensors",
    "*.json",
    "*.py",
    "*.jinja",
    "README.md",
    "training_args.bin",
)


@dataclass
class TrainingOptions(SFTConfig):
    """TRL's SFTConfig as it is, shown in --help as its own group."""

    _argument_group_name = "training: TRL's SFTConfig (every Trainer option)"


@dataclass
class ModelOptions(ModelConfig):
    """TRL's ModelConfig as it is (the model, its dtype and attention, LoRA), shown as its own group."""

    _argument_group_name = "model and LoRA: TRL's ModelConfig (LoRA targets are scoped to the language model)"


def parse_arguments(argv: list[str] | None = None):
    """(FaceInsightScriptArguments, SFTConfig, ModelConfig) from flags and an optional `--config FILE.yaml`."""
    from trl import TrlParser

    parser = TrlParser(
        (FaceInsightScriptArguments, TrainingOptions, ModelOptions),
        prog="faceinsight train",
        usage=USAGE,
        description=__doc__.split("\n\n")[0],
    )
    if not torch.cuda.is_available():  # SFTConfig defaults to bf16, which a CPU machine refuses at parse time
        parser.set_defaults(use_cpu=True, bf16=False)
    parser.set_defaults(
        report_to="none",
        learning_rate=DEFAULT_LEARNING_RATE,
        lora_r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        lora_target_modules=LM_ATTENTION,
    )
    with warnings.catch_warnings():  # SFTConfig's own default uses a name transformers deprecates: not the user's
        warnings.filterwarnings("ignore", message="`gradient_checkpointing` is deprecated", category=FutureWarning)
        script_args, training_args, model_args = parser.parse_args_and_config(args=argv)
    # what the parser cannot check by itself
    if training_args.output_dir in (None, "trainer_output") and "--output_dir" not in (argv or []):
        raise ValueError("--output_dir is required (where the trained folder goes)")
    if not model_args.model_name_or_path:
        raise ValueError("--model_name_or_path is required (a FaceInsight folder, e.g. from faceinsight build)")
    for old, new in (
        ("recipe", "stage"),
        ("parsing_maps", "parsing_map_source"),
        ("eval_parsing_maps", "eval_parsing_map_source"),
    ):
        if getattr(script_args, old) is not None:
            warnings.warn(f"--{old} is deprecated; use --{new}", FutureWarning, stacklevel=2)
            setattr(script_args, new, getattr(script_args, old))
    if script_args.stage not in STAGES:
        raise ValueError(f"--stage must be one of {', '.join(STAGES)}, got {script_args.stage!r}")
    if script_args.stage == "stage1" and (model_args.use_peft or script_args.save_adapter):
        raise ValueError("stage1 trains no LoRA adapter: --use_peft and --save_adapter need --stage stage2")
    if script_args.train_language_model and (script_args.stage == "stage1" or script_args.save_adapter):
        raise ValueError(
            "--train_language_model trains the LM in full in stage2: it takes neither --stage stage1 nor "
            "--save_adapter (there is no LoRA adapter)"
        )
    if not 0.0 <= script_args.knowledge_teacher_forcing <= 1.0:
        raise ValueError(f"--knowledge_teacher_forcing {script_args.knowledge_teacher_forcing}: expected 0 to 1")
    model_args.use_peft = script_args.stage == "stage2" and not script_args.train_language_model
    return script_args, training_args, model_args


def write_reports(run, script_args, output_dir: Path) -> dict:
    """training_report.json (with the held-out scores against the majority baseline) and knowledge_summary.json."""
    from faceinsight.evaluation.structured import evaluate_face_labels
    from faceinsight.training.train import training_report

    held_out = None
    if len(run.test_records):
        source = script_args.eval_parsing_map_source or script_args.parsing_map_source
        held_out = evaluate_face_labels(
            run.model, run.processor, run.test_records, run.train_targets, parsing_map_source=source
        )
    report = training_report(run, script_args, held_out)
    if run.knowledge is not None:
        summary = {k: v for k, v in run.knowledge.items() if k != "correlation_matrix"}
        (output_dir / "knowledge_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    (output_dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    from faceinsight.evaluation.report import task_table
    from faceinsight.folders import check_model_source, output_dir
    from faceinsight.training.train import run_training

    script_args, training_args, model_args = parse_arguments(argv)
    check_model_source(model_args.model_name_or_path, "--model_name_or_path")
    resuming = str(training_args.resume_from_checkpoint).lower() not in ("none", "false", "no", "")
    with output_dir(
        training_args.output_dir, "train", overwrite=script_args.overwrite, reuse=resuming, patterns=TRAIN_ENTRIES
    ):
        run = run_training(script_args, training_args, model_args)
        if run is None:  # a process of a distributed run that does not write the folder
            return 0
        report = write_reports(run, script_args, Path(training_args.output_dir))
    if report["held_out"]:
        model_scores, majority = report["held_out"]["structured"], report["held_out"]["majority_baseline"]
        print(f"held-out faces: {model_scores['faces']}")
        print(task_table({"this model": model_scores, "majority baseline": majority}))
    print(f"wrote {training_args.output_dir} (training_report.json)")
    return 0
