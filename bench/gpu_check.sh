#!/usr/bin/env bash
# One script for a CUDA machine: scan-path throughput and parity (issue 2), then the
# trainer's stage-2 figures if its script exists (issue 3). Prints everything to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e . 2>/dev/null || pip install -q --no-deps -e .
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python bench/gpu_check.py --arch ViT-L-14 --device cuda --batch-size 32 --images 256
if [ -f bench/gpu_train.sh ]; then bash bench/gpu_train.sh; fi
