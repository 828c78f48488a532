#!/usr/bin/env bash
# Stage-2 DGS steps of ViT-L-14 (random weights) in bf16, batch 32, on one CUDA GPU:
# prints images/s and peak memory for the teacher-pass and the feature-cache variants.
#   bash bench/gpu_train.sh [STEPS]        (default 300; needs CUDA; no downloads)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS="${1:-300}"
export HF_HUB_OFFLINE=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
python - "$STEPS" <<'PY'
import sys, time, torch
from torch import nn
from dgs_desktop.detector.model import build_detector
from trainer.step import SurgeryConfig, dgs_backward

assert torch.cuda.is_available(), "needs a CUDA GPU"
steps, batch, dev = int(sys.argv[1]), 32, torch.device("cuda")
print(torch.cuda.get_device_name(0), "torch", torch.__version__)
torch.manual_seed(0)
det = build_detector("ViT-L-14", None, with_text=True).to(dev).train()
d = det.embed_dim
h_text, h_t = nn.Linear(d, 1).to(dev), nn.Linear(d, 1).to(dev).requires_grad_(False)
params = [p for p in det.visual.parameters() if p.requires_grad] + list(det.head.parameters()) + list(h_text.parameters())
opt = torch.optim.Adam(params, lr=1e-4)
x = torch.randn(batch, 3, 224, 224, device=dev)
y = (torch.arange(batch, device=dev) % 2).float()
t, cached = torch.randn(batch, d, device=dev), torch.randn(batch, d, device=dev)
cfg = SurgeryConfig()

def step(teacher):
    opt.zero_grad(set_to_none=True)
    if teacher:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16), det.teacher():
            ft = det.visual(x)
    else:
        ft = cached
    with torch.autocast("cuda", dtype=torch.bfloat16):
        f = det.features(x)
    dgs_backward(f, t, ft, y, det.head, h_text, h_t, cfg)
    opt.step()

for teacher in (True, False):
    for _ in range(5):
        step(teacher)
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(steps):
        step(teacher)
    torch.cuda.synchronize()
    el = time.perf_counter() - start
    print(f"ViT-L-14 bf16 batch {batch}, {'teacher pass' if teacher else 'feature cache'}: "
          f"{steps * batch / el:.1f} images/s, {1000 * el / steps:.1f} ms/step, "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
PY
