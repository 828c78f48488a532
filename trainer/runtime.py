"""Where the run computes: device, mixed precision and the process group, resolved once."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass

import torch

from .config import TrainConfig
from .distributed import Dist
from .errors import TrainError


def amp_dtype_for(mode: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of `--amp mode` on `device` (None: fp32)."""
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "off"
    if mode == "off":
        return None
    if device.type != "cuda":
        raise TrainError(f"--amp {mode} needs a CUDA device (bf16 autocast is slower than fp32 on CPU)")
    return torch.bfloat16 if mode == "bf16" else torch.float16


@dataclass(frozen=True)
class Runtime:
    device: torch.device
    amp_dtype: torch.dtype | None
    dist: Dist
    progress: bool  # progress bars on this process

    @classmethod
    def create(cls, config: TrainConfig, dist: Dist) -> Runtime:
        from dgs_desktop.detector.device import resolve_device

        device = resolve_device(config.device)  # a bad spec is a DeviceError (exit 2)
        if dist.enabled and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
        return cls(device=device, amp_dtype=amp_dtype_for(config.amp, device), dist=dist,
                   progress=config.progress and dist.is_main)

    def autocast(self):
        return torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None else nullcontext()

    @property
    def precision(self) -> str:
        return str(self.amp_dtype).replace("torch.", "") if self.amp_dtype is not None else "fp32"
