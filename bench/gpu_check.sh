#!/usr/bin/env bash
# Every GPU check in one run (about 5 minutes on an H200): ViT-L-14 scan throughput (host and
# device paths, bf16 and fp32), CPU cores used, peak memory, patch-choice and CPU/GPU parity;
# a 2-rank torchrun scan; the stage-2 step figures; the trainer, evaluate and scan end to end
# on CUDA. Each part has its own time limit, so one that hangs does not cost the others.
# The log goes to $OUT/gpu_check.log (or a temporary folder).
#   bash bench/gpu_check.sh
# Wheels in .whl/ (the project's and what the machine lacks) are installed first, without an
# index; otherwise the checkout is installed with pip.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$(mktemp -d)}"
mkdir -p "$OUT"
log="$OUT/gpu_check.log"
PY="${PYTHON:-python3}"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1

if ls .whl/*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    || exit 1
  export PYTHONPATH=/tmp/site
else
  "$PY" -m pip install -q -e . || exit 1
fi

part() {  # part NAME SECONDS COMMAND...
  local name=$1 limit=$2
  shift 2
  echo "== $name (limit ${limit} s)" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  echo "== $name: rc ${PIPESTATUS[0]}" | tee -a "$log"
}

part gpu 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
part versions 60 "$PY" -c "import torch, torchvision, open_clip, peft, transformers, dgs_desktop; print(
  'torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'open_clip',
  open_clip.__version__, 'peft', peft.__version__, 'transformers', transformers.__version__)"
part scan 170 "$PY" bench/gpu_check.py --arch ViT-L-14 --device cuda --images 1024
part torchrun-scan 60 "$PY" bench/gpu_dist_smoke.py
part stage2 80 bash bench/gpu_train.sh 60
part trainer 100 "$PY" bench/gpu_trainer_smoke.py --device cuda
