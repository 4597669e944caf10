#!/usr/bin/env bash
# Everything that needs CUDA, in one command (issue 12), written to OUT_DIR as logs and JSON:
#   1. the package importable beside the machine's own torch: wheels carried in .whl/ (transformers, trl, datasets
#      and their needs, fetched here with benchmarks/gpu_wheels.sh) installed into /tmp/site, no index;
#   2. the GPU tests (tests/test_gpu.py): bf16 generation with and without cache, bf16 training steps with SDPA
#      forced onto its flash-attention kernel, flash_attention_2 when flash-attn is importable, a --from-llava build
#      whose logits equal LLaVA's;
#   3. FSDP (examples/accelerate_fsdp.yaml, one process: accelerate applies FSDP only on GPUs, on CPUs it falls back
#      to plain data parallelism) against the same run without it: final weights within float tolerance after a
#      resume from its sharded step-3 checkpoint;
#   4. bench_model.py --device cuda at the SigLIP-base + SmolLM2-135M sizes and at LLaVA-1.5-7B's layout (random
#      weights, bf16), both interleaved against transformers' LLaVA in one process.
# Without a CUDA device it is a dry run: the same steps, the GPU tests skip and the CUDA benchmarks are left out, so
# the script itself is checked on any machine. Meant to finish within 8 minutes on an H100.
#
#   benchmarks/gpu_check.sh OUT_DIR
set -uo pipefail
out=${1:?usage: benchmarks/gpu_check.sh OUT_DIR}
mkdir -p "$out"
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
status=0

if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        || { echo "gpu_check: installing .whl/ failed" >&2; exit 2; }
    export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if ! python3 -c "import faceinsight" 2>/dev/null; then  # the repository root is the package: put a link on the path
    mkdir -p /tmp/fi_path && ln -sfn "$PWD" /tmp/fi_path/faceinsight
    export PYTHONPATH=/tmp/fi_path${PYTHONPATH:+:$PYTHONPATH}
fi

python3 - <<'EOF' | tee "$out/environment.json"
import json, platform, torch, transformers
info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
        "cuda": torch.cuda.is_available()}
if torch.cuda.is_available():
    info["gpu"] = torch.cuda.get_device_name()
try:
    import flash_attn
    info["flash_attn"] = flash_attn.__version__
except ImportError:
    info["flash_attn"] = None
print(json.dumps(info))
EOF

python3 -m pytest -q -p no:cacheprovider tests/test_gpu.py -rs --junitxml="$out/gpu_tests.xml" 2>&1 \
    | tee "$out/gpu_tests.log" || status=1

if python3 -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    python3 -m faceinsight.commands build "$out/tiny" --preset tiny --overwrite >/dev/null
    common=(train --model_name_or_path "$out/tiny" --num_train_faces 64 --num_eval_faces 4 --max_steps 6
        --save_steps 3 --per_device_train_batch_size 8 --optim sgd --learning_rate 0.2 --seed 0)
    fsdp=(accelerate launch --config_file examples/accelerate_fsdp.yaml --num_processes 1 --mixed_precision no
        -m faceinsight.commands "${common[@]}" --output_dir "$out/fsdp")
    { python3 -m faceinsight.commands "${common[@]}" --output_dir "$out/plain" && "${fsdp[@]}" \
        && rm -rf "$out/fsdp/checkpoint-6" && "${fsdp[@]}" --resume_from_checkpoint "$out/fsdp/checkpoint-3" \
        ; } > "$out/fsdp.log" 2>&1 || status=1
    python3 - "$out" <<'EOF' | tee "$out/fsdp.json" || status=1
import json, sys
from pathlib import Path
from safetensors.torch import load_file
out = Path(sys.argv[1])
def weights(folder):
    name = "adapter_model.safetensors" if (folder / "adapter_model.safetensors").exists() else "model.safetensors"
    return load_file(folder / name)
plain, fsdp = weights(out / "plain"), weights(out / "fsdp")
worst = max(float((plain[k].float() - fsdp[k].float()).abs().max()) for k in plain)
print(json.dumps({"same_keys": sorted(plain) == sorted(fsdp), "max_abs_difference": worst}))
sys.exit(0 if sorted(plain) == sorted(fsdp) and worst < 1e-3 else 1)
EOF
    python3 benchmarks/bench_model.py --device cuda --layout base --json "$out/bench_model_cuda_base.json" 2>&1 \
        | tee "$out/bench_model_cuda_base.log" || status=1
    python3 benchmarks/bench_model.py --device cuda --layout llava-1.5-7b --repeats 3 --new-tokens 16 \
        --json "$out/bench_model_cuda_llava7b.json" 2>&1 | tee "$out/bench_model_cuda_llava7b.log" || status=1
else
    echo "gpu_check: no CUDA device here: GPU tests skipped, CUDA benchmarks left out (dry run)" | tee "$out/dry_run.txt"
fi
exit $status
