#!/usr/bin/env bash
# One script for a CUDA machine (under 5 minutes): ViT-L-14 bf16 scan throughput with the host
# and device paths, CPU cores used, peak memory, patch-choice and CPU/GPU parity; then a
# 2-rank torchrun scan smoke test; then the trainer's stage-2 figures if its script exists.
set -euo pipefail
cd "$(dirname "$0")/.."
pip install -q -e . 2>/dev/null || pip install -q --no-deps -e .
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
python bench/gpu_check.py --arch ViT-L-14 --device cuda --batch-size 32 --images 512
python bench/gpu_dist_smoke.py || true
if [ -f bench/gpu_train.sh ]; then bash bench/gpu_train.sh; fi
