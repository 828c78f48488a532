"""Generated image trees for the trainer tests (no downloads; no tests in this module)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


def smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A 'real' image: smooth colour gradients and blobs (low spatial frequency)."""
    y, x = np.mgrid[0:size, 0:size] / size
    channels = []
    for _ in range(3):
        a, b, c, d = rng.uniform(0, 2 * np.pi, 4)
        channels.append(0.5 + 0.25 * np.sin(2 * np.pi * (rng.uniform(0.3, 1.5) * x) + a)
                        + 0.2 * np.cos(2 * np.pi * (rng.uniform(0.3, 1.5) * y) + b) * np.sin(c + d * x))
    return np.clip(np.stack(channels, -1) * 255, 0, 255).astype(np.uint8)


def fake_image(rng: np.random.Generator, size: int) -> np.ndarray:
    """A 'fake' image: the same kind of content plus a high-frequency checkerboard and noise."""
    base = smooth_image(rng, size).astype(np.float32)
    y, x = np.mgrid[0:size, 0:size]
    checker = ((x + y) % 2 * 2 - 1)[..., None] * rng.uniform(60, 80)
    noise = rng.normal(0, 20, base.shape)
    return np.clip(base + checker + noise, 0, 255).astype(np.uint8)


def make_tree(root: Path, subsets=("cats", "gan/sd"), per_class: int = 8, size: int = 256, seed: int = 0,
              fmt: str = "png") -> Path:
    rng = np.random.default_rng(seed)
    for subset in subsets:
        for cls, maker in (("0_real", smooth_image), ("1_fake", fake_image)):
            folder = root / subset / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.fromarray(maker(rng, size)).save(folder / f"img_{i:03d}.{fmt}")
    return root


# ------------------------------------------- one stage-2 step on a fixed global batch
GLOBAL_BATCH = 8


def one_step_gradients(accum: int, mode: str = "reference", global_batch_for_lambda: int | None = GLOBAL_BATCH,
                       lam: float = 50.0) -> dict:
    """LoRA and head gradients of one `trainer.stage2.train_step` on a fixed batch of 8.

    Runs in this process, or in each process of a torchrun group (gloo): every process takes
    its micro-batches of the same global batch. LoRA dropout is off so the step is
    deterministic. A large lambda makes the prior term dominate, so a wrong lambda/B shows.
    `global_batch_for_lambda=None` reproduces the old per-micro-batch B (for the control).
    """
    import torch

    from dgs_desktop.detector.backbone import TEST_TINY
    from trainer.batching import micro_batches
    from trainer.config import TrainConfig
    from trainer.distributed import init_distributed
    from trainer.networks import Networks
    from trainer.runtime import Runtime
    from trainer.stage2 import MicroBatch, train_step

    torch.set_num_threads(1)
    dist = init_distributed("cpu")
    config = TrainConfig(data="-", out="-", arch=TEST_TINY, pretrained=None, lora_dropout=0.0, lam=lam,
                         surgery=mode, accum=accum, batch_size=GLOBAL_BATCH)
    runtime = Runtime(device=torch.device("cpu"), amp_dtype=None, dist=dist, progress=False)
    networks = Networks.build(config, runtime.device)
    gen = torch.Generator().manual_seed(1234)
    with torch.no_grad():
        for name, p in networks.detector.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
        for head in (networks.h_teacher, networks.h_text, networks.detector.head):
            head.weight.copy_(torch.randn(head.weight.shape, generator=gen))
    dim = networks.detector.embed_dim
    x = torch.randn(GLOBAL_BATCH, 3, 224, 224, generator=gen)
    y = torch.tensor([0.0, 1.0] * (GLOBAL_BATCH // 2))
    t, f_teacher = torch.randn(GLOBAL_BATCH, dim, generator=gen), torch.randn(GLOBAL_BATCH, dim, generator=gen)
    student = networks.detector.visual
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        student = DistributedDataParallel(student)
    pieces = micro_batches(np.arange(GLOBAL_BATCH), dist.rank, dist.world, accum)
    micro = [MicroBatch(x=x[i], y=y[i], t=t[i], f_teacher=f_teacher[i]) for i in map(torch.as_tensor, pieces)]
    networks.detector.train()
    optimizer = torch.optim.SGD(networks.stage2_parameters(), lr=0.0)  # keeps the gradients, moves nothing
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    train_step(networks, student, micro, optimizer, scaler, config.surgery_config(), runtime,
               global_batch_for_lambda or len(pieces[0]))
    grads = {n: p.grad.detach().clone() for n, p in networks.detector.named_parameters() if p.grad is not None}
    grads.update({f"h_text.{n}": p.grad.detach().clone() for n, p in networks.h_text.named_parameters()})
    del student  # DDP's reducer goes before its process group,
    dist.barrier()  # and the group only once every process is done with it (else gloo may abort a peer)
    dist.close()
    return grads


if __name__ == "__main__":  # torchrun --nproc_per_node=2 tests/test_trainer_support.py OUT ACCUM
    import os
    import sys

    from safetensors.torch import save_file

    result = one_step_gradients(int(sys.argv[2]))
    if int(os.environ.get("RANK", "0")) == 0:
        save_file({k: v.contiguous() for k, v in result.items()}, sys.argv[1])
    # The group is closed and the gradients written: leave without interpreter finalization,
    # where gloo's threads once aborted both ranks in CI ("terminate called without an active
    # exception"; not reproduced in 23 runs here, idle or loaded). What is tested is the step.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def test_more_processes_than_gpus_is_a_clear_error(monkeypatch):
    import torch

    from trainer.distributed import init_distributed
    from trainer.errors import TrainError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: pytest.fail("set_device on a GPU that is not there"))
    for name, value in {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(TrainError, match="NCCL needs one GPU per process and this machine has 1"):
        init_distributed("auto")
