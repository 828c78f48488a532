#!/usr/bin/env bash
# Stage-2 DGS steps of ViT-L-14 (random weights), batch 32, on one CUDA GPU: images/s and peak
# memory for bf16 autocast (`--amp auto` on CUDA) with the teacher pass and with the feature
# cache, and for IEEE fp32 (`--amp off`, TF32 off: the authors' arithmetic) with the teacher pass.
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

torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False

def step(teacher, bf16):
    opt.zero_grad(set_to_none=True)
    if teacher:
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16), det.teacher():
            ft = det.visual(x)
    else:
        ft = cached
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=bf16):
        f = det.features(x)
    dgs_backward(f, t, ft, y, det.head, h_text, h_t, cfg)
    opt.step()

for teacher, bf16 in ((True, True), (False, True), (True, False)):
    for _ in range(5):
        step(teacher, bf16)
    torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    n = steps if bf16 else max(1, steps // 3)  # fp32 is several times slower
    for _ in range(n):
        step(teacher, bf16)
    torch.cuda.synchronize()
    el = time.perf_counter() - start
    print(f"ViT-L-14 {'bf16' if bf16 else 'fp32 (IEEE)'} batch {batch}, "
          f"{'teacher pass' if teacher else 'feature cache'}: {n * batch / el:.1f} images/s, {1000 * el / n:.1f} ms/step, "
          f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
PY
