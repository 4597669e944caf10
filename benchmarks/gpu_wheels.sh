#!/usr/bin/env bash
# Fetch, on a machine with pip access, the wheels benchmarks/gpu_check.sh installs beside a GPU image's own torch
# (that image has torch, accelerate, peft, pyarrow, scikit-image; not this package's transformers, trl, datasets):
# pure-Python or manylinux x86-64 wheels for Python 3.12 into .whl/ (ignored by git; carry it to the GPU machine).
#
#   benchmarks/gpu_wheels.sh && du -sh .whl
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
    transformers==5.24.0 trl==1.16.0 datasets==5.2.0 huggingface_hub==2.4.0 tokenizers==0.23.3 \
    safetensors==0.8.0 accelerate==1.15.0 peft==0.21.2 dill==0.4.1 multiprocess==0.70.19 fsspec==2026.9.0
