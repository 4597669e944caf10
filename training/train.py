"""`faceinsight train`: supervised fine-tuning of FaceInsight with TRL's SFTTrainer, keeping the paper's losses.

Every knob is a flag (TRL's parser: `SFTConfig`'s flags plus the ones below) or a YAML recipe (`--config FILE`).
Recipes (the paper's two stages): `stage1` trains the projectors and knowledge modules; `stage2` adds LoRA on the
language model (targets and modules to save are flags). Knowledge (C_hat, logic rules) is computed from the
training labels and written into the model's config before training. The final folder is Hub-ready (LoRA merged).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import SFTConfig


@dataclass
class FaceInsightScriptArguments:
    _argument_group_name = "FaceInsight: data, recipe, LoRA, knowledge, ablations"

    model_name_or_path: str = field(metadata={"help": "a FaceInsight folder (e.g. from `faceinsight build`)"})
    dataset_name: str = field(default="synthetic", metadata={"help": "synthetic, celeba, lfwa, fairface, utkface, "
                              "rafdb, affectnet, celebamask_hq, or a datasets folder saved with save_to_disk"})  # fmt: skip
    dataset_dir: str | None = field(default=None, metadata={"help": "the dataset's root in its original layout"})
    num_train_faces: int = field(default=2000, metadata={"help": "synthetic: training faces"})
    num_eval_faces: int = field(default=500, metadata={"help": "synthetic: held-out faces for the final report"})
    recipe: str = field(default="stage2", metadata={"help": "stage1 (projectors + knowledge) or stage2 (+ LoRA)"})
    lora_r: int = 8
    lora_alpha: int = 16
    lora_dropout: float = 0.0
    lora_target_modules: str = field(default="q_proj,k_proj,v_proj,o_proj",
                                     metadata={"help": "LM module names for LoRA (comma-separated)"})  # fmt: skip
    modules_to_save: str = field(default="multi_modal_projector,parsing_projector,correlation_module",
                                 metadata={"help": "modules trained in full beside LoRA"})  # fmt: skip
    derive_knowledge: bool = field(default=True, metadata={"help": "compute C_hat and rules from training labels"})
    correlation_tau: float = 0.4
    correlation_omega: float = 0.2
    min_rule_support: int = 20
    attn_implementation: str = field(default="sdpa", metadata={"help": "sdpa, eager, or flash_attention_2 (CUDA)"})
    train_vision_tower: bool = field(default=False, metadata={"help": "also train the image tower (needed when it "
                                     "starts random, as in the tiny preset; the paper keeps a pretrained one frozen)"})
    train_parsing_encoder: bool = field(default=False, metadata={"help": "also train the parsing-map encoder"})
    parsing_maps: str = field(default="dataset", metadata={"help": "dataset (its maps; the in-model parser where it has "
                              "none), parser (the in-model parser always), blank (all background: the no-parsing "
                              "ablation)"})  # fmt: skip
    eval_parsing_maps: str | None = field(default=None, metadata={"help": "maps for the held-out report (default: as "
                                          "--parsing_maps); 'parser' measures what a user without maps gets"})  # fmt: skip
    use_correlation_graph: bool = field(default=True, metadata={"help": "false: C_hat = identity (the no-CCM "
                                        "ablation: no edges between labels in the GCN)"})  # fmt: skip
    use_logic_rules: bool = field(default=True, metadata={"help": "false: no mined rules and no L_c (the no-LCM "
                                  "ablation; decisions are thresholds, one value per facet)"})  # fmt: skip
    save_adapter: bool = field(default=False, metadata={"help": "stage2: also write the LoRA adapter (with the modules "
                               "trained in full) to OUTPUT_DIR/adapter, pointing at --adapter_base"})  # fmt: skip
    adapter_base: str | None = field(default=None, metadata={"help": "the base the adapter names (a Hub id once the "
                                     "base is published; default: --model_name_or_path)"})  # fmt: skip
    on_error: str = field(default="raise", metadata={"help": "a bad row or image: raise (stop, naming it) or skip "
                          "(and count it in training_report.json)"})
    verify_images: bool = field(default=True, metadata={"help": "decode every image once before training (a corrupt "
                                "or truncated file is found up front, not mid-run)"})
    overwrite: bool = field(default=False, metadata={"help": "replace an earlier faceinsight train output in "
                            "--output_dir (only what it wrote); without it a non-empty folder is refused, except to "
                            "resume (--resume_from_checkpoint)"})


def load_records(script_args, image_size: int, seed: int):
    """(train records, held-out records, reports) for the chosen dataset."""
    from faceinsight.training import face_datasets

    name = script_args.dataset_name
    if name == "synthetic":
        train, train_report = face_datasets.synthetic_faces(script_args.num_train_faces, seed, image_size, "train")
        test, _ = face_datasets.synthetic_faces(script_args.num_eval_faces, seed, image_size, "test")
        return train, test, train_report
    records, report = face_datasets.read_named_dataset(name, script_args.dataset_dir, script_args.on_error,
                                                       verify_images=script_args.verify_images)  # fmt: skip
    train = records.filter(lambda split: split == "train", input_columns="split")
    if len(train) == 0:
        raise ValueError(f"--dataset_name {name}: no training rows in {script_args.dataset_dir} (its splits: "
                         f"{report['splits']}); training needs some")  # fmt: skip
    if report.get("skipped"):
        print(f"skipped while reading {name}: {report['skipped']} (--on_error skip; also in training_report.json)")
    test = records.filter(lambda split: split != "train", input_columns="split")
    return train, test, report


def _is_complete(checkpoint: Path) -> bool:
    """The Trainer writes trainer_state.json last: a checkpoint is complete when that file is there and parses."""
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


def latest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest checkpoint-N folder written to the end; newer ones that a killed run or a full disk left
    incomplete are passed over, and named."""
    numbered = sorted((p for p in Path(output_dir).glob("checkpoint-*") if p.name.split("-")[-1].isdigit()),
                      key=lambda p: int(p.name.split("-")[-1]), reverse=True)  # fmt: skip
    for checkpoint in numbered:
        if _is_complete(checkpoint):
            return str(checkpoint)
        print(f"resume: passing over {checkpoint} (incomplete: its trainer_state.json is missing or truncated)")
    return None


def resolve_resume(value: str | None, output_dir: str) -> str | None:
    if value is None or str(value).lower() in ("false", "no", ""):
        return None
    if str(value).lower() in ("true", "latest", "yes"):
        checkpoint = latest_complete_checkpoint(output_dir)
        if checkpoint is None:
            raise FileNotFoundError(f"--resume_from_checkpoint {value}: no complete checkpoint in {output_dir}")
        return checkpoint
    if not Path(value).is_dir():
        raise FileNotFoundError(f"--resume_from_checkpoint: {value} is not a checkpoint folder")
    if not _is_complete(Path(value)):
        raise ValueError(f"--resume_from_checkpoint: {value} is incomplete (trainer_state.json missing or truncated); "
                         "pass 'true' to resume from the newest complete checkpoint")  # fmt: skip
    return value


def run_training(script_args: FaceInsightScriptArguments, training_args) -> dict:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoProcessor

    from faceinsight import FaceInsightForConditionalGeneration
    from faceinsight.evaluation.structured import evaluate_attributes
    from faceinsight.hub.export import save_model_folder
    from faceinsight.training.collator import PARSING_MAP_MODES, FaceInsightCollator
    from faceinsight.training.instructions import encode_labels, to_conversations
    from faceinsight.training.knowledge import apply_knowledge, derive_knowledge, record_label_coverage, summary_text
    from faceinsight.training.trainer import FaceInsightSFTTrainer

    if script_args.recipe not in ("stage1", "stage2"):
        raise ValueError(f"--recipe must be stage1 or stage2, got {script_args.recipe!r}")
    for flag in ("parsing_maps", "eval_parsing_maps"):
        value = getattr(script_args, flag)
        if value is not None and value not in PARSING_MAP_MODES:
            raise ValueError(f"--{flag} must be one of {', '.join(PARSING_MAP_MODES)}, got {value!r}")
    if script_args.save_adapter and script_args.recipe != "stage2":
        raise ValueError("--save_adapter needs --recipe stage2 (stage 1 trains no LoRA adapter)")
    from transformers import set_seed

    set_seed(training_args.seed)  # LoRA's initialisation comes before the Trainer seeds anything
    output_dir = Path(training_args.output_dir)
    model = FaceInsightForConditionalGeneration.from_pretrained(
        script_args.model_name_or_path, use_safetensors=True, attn_implementation=script_args.attn_implementation
    )
    processor = AutoProcessor.from_pretrained(script_args.model_name_or_path)
    train_records, test_records, data_report = load_records(
        script_args, processor.image_processor.size, training_args.seed
    )
    train_targets = [encode_labels(json.loads(labels), model.config) for labels in train_records["labels"]]
    record_label_coverage(model.config, train_targets)

    knowledge = None
    if script_args.derive_knowledge:
        knowledge = derive_knowledge(train_targets, model.config, tau=script_args.correlation_tau,
                                     omega=script_args.correlation_omega, min_support=script_args.min_rule_support)  # fmt: skip
        if not script_args.use_correlation_graph:
            knowledge["correlation_matrix"] = torch.eye(len(model.config.label_names)).tolist()
        if not script_args.use_logic_rules:
            knowledge["logic_rules"] = []
        apply_knowledge(model, knowledge)
        print(summary_text(knowledge))
    if not script_args.use_logic_rules:  # the no-LCM ablation: neither the loss nor rule-based decisions
        model.config.logic_rules, model.config.logic_loss_weight = [], 0.0
        model.refresh_config_buffers()

    # the recipe's choice, not the model's: stage 1 trains projectors and knowledge; stage 2 adds LoRA on the LM,
    # whose base weights PEFT freezes (the LM stays in train mode for the adapter's dropout)
    extra_trained = [name for name, wanted in (("vision_tower", script_args.train_vision_tower),
                                               ("parsing_encoder", script_args.train_parsing_encoder)) if wanted]  # fmt: skip
    frozen = [part for part in ("vision_tower", "parsing_encoder") if part not in extra_trained]
    model.freeze("parser", *frozen, *(["language_model"] if script_args.recipe == "stage1" else []))

    if script_args.recipe == "stage2":
        targets = "|".join(m.strip() for m in script_args.lora_target_modules.split(","))
        lora = LoraConfig(
            r=script_args.lora_r,
            lora_alpha=script_args.lora_alpha,
            lora_dropout=script_args.lora_dropout,
            target_modules=rf".*language_model.*\.({targets})",
            modules_to_save=[m.strip() for m in script_args.modules_to_save.split(",") if m.strip()] + extra_trained,
        )
        model = get_peft_model(model, lora)
    if training_args.gradient_checkpointing:  # frozen embeddings: checkpointed blocks still need an input with grad
        model.enable_input_require_grads()

    train_dataset = to_conversations(train_records, model.config, seed=training_args.seed)
    training_args.remove_unused_columns = False
    training_args.dataset_kwargs = {"skip_prepare_dataset": True}
    trainer = FaceInsightSFTTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        processing_class=processor,
        data_collator=FaceInsightCollator(processor, parsing_maps=script_args.parsing_maps),
    )
    trainer.train(resume_from_checkpoint=resolve_resume(training_args.resume_from_checkpoint, training_args.output_dir))

    if not trainer.is_world_process_zero():  # under accelerate/torchrun only the main process writes the folder
        return {}
    final = trainer.model
    if script_args.save_adapter:
        from faceinsight.hub.adapters import save_adapter

        base_config = FaceInsightForConditionalGeneration.config_class.from_pretrained(script_args.model_name_or_path)
        base = script_args.adapter_base or script_args.model_name_or_path
        save_adapter(final, output_dir / "adapter", str(Path(base).resolve()) if Path(base).is_dir() else base,
                     base_config)  # fmt: skip
    if hasattr(final, "merge_and_unload"):
        final = final.merge_and_unload()
    final.eval()
    save_model_folder(final, processor, output_dir)
    report = {
        "data": data_report,
        "recipe": script_args.recipe,
        "also_trained": extra_trained,
        "steps": trainer.state.global_step,
        "loss_history": [
            {k: v for k, v in entry.items() if k in ("step", "loss", "lm_loss", "bce_loss", "logic_loss")}
            for entry in trainer.state.log_history
            if "loss" in entry
        ],  # fmt: skip
        "held_out": evaluate_attributes(
            final, processor, test_records, train_targets,
            parsing_maps=script_args.eval_parsing_maps or script_args.parsing_maps,
        )
        if len(test_records)
        else None,  # fmt: skip
    }
    if knowledge is not None:
        (output_dir / "knowledge_summary.json").write_text(json.dumps(
            {k: v for k, v in knowledge.items() if k != "correlation_matrix"}, indent=2) + "\n")  # fmt: skip
    (output_dir / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


USAGE = ("faceinsight train --model_name_or_path DIR --output_dir OUT [--config recipe.yaml] "
         "[--dataset_name NAME --dataset_dir ROOT] [--max_steps N] [options]")  # fmt: skip
DEFAULT_LEARNING_RATE = 2e-4  # LLaVA-1.5's LoRA rate; TRL's 2e-5 barely moves the new projectors and knowledge head


@dataclass
class TrainingOptions(SFTConfig):
    """TRL's SFTConfig as it is, shown in --help as its own group."""

    _argument_group_name = "training: TRL's SFTConfig (every Trainer option)"


def parse_arguments(argv: list[str] | None = None):
    """(FaceInsightScriptArguments, SFTConfig) from flags and an optional `--config recipe.yaml` (flags win)."""
    from trl import TrlParser

    parser = TrlParser((FaceInsightScriptArguments, TrainingOptions), prog="faceinsight train", usage=USAGE,
                       description="Fine-tune a FaceInsight folder with TRL's SFTTrainer on the whole objective "
                       "(LM + BCE + logic). Every option can also come from a YAML file: --config recipe.yaml "
                       "(flags win). --output_dir is required.")  # fmt: skip
    if not torch.cuda.is_available():  # SFTConfig defaults to bf16, which a CPU machine refuses at parse time
        parser.set_defaults(use_cpu=True, bf16=False)
    parser.set_defaults(report_to="none", learning_rate=DEFAULT_LEARNING_RATE)
    with warnings.catch_warnings():  # SFTConfig's own default uses a name transformers deprecates: not the user's
        warnings.filterwarnings("ignore", message="`gradient_checkpointing` is deprecated", category=FutureWarning)
        script_args, training_args = parser.parse_args_and_config(args=argv)
    if training_args.output_dir in (None, "trainer_output") and "--output_dir" not in (argv or []):
        raise ValueError("--output_dir is required (where the trained folder goes)")
    return script_args, training_args


# what a training run writes into its output folder: the only entries --overwrite replaces
TRAIN_ENTRIES = ("checkpoint-*", "adapter", "runs", "*.safetensors", "*.json", "*.py", "*.jinja", "README.md",
                 "training_args.bin")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from faceinsight.hub.sources import check_model_source
    from faceinsight.outputs import output_dir

    script_args, training_args = parse_arguments(argv)
    check_model_source(script_args.model_name_or_path, "--model_name_or_path")
    resuming = str(training_args.resume_from_checkpoint).lower() not in ("none", "false", "no", "")
    with output_dir(training_args.output_dir, "train", overwrite=script_args.overwrite, reuse=resuming,
                    patterns=TRAIN_ENTRIES):  # fmt: skip
        report = run_training(script_args, training_args)
    if not report:
        return 0
    if report["held_out"]:
        from faceinsight.evaluation.report import task_table

        model_scores, majority = report["held_out"]["structured"], report["held_out"]["majority_baseline"]
        print(f"held-out faces: {model_scores['faces']}")
        print(task_table({"this model": model_scores, "majority baseline": majority}))
    print(f"wrote {training_args.output_dir} (training_report.json)")
    return 0
