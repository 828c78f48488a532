"""torch.distributed set-up for `torchrun --standalone --nproc_per_node=N -m trainer`.

NCCL on CUDA, gloo on CPU; rank 0 writes checkpoints, logs and caches. A single process
(no torchrun) gets a no-op `Dist` with rank 0 and world 1.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch

from dgs_desktop.envknobs import required_int

from .errors import TrainError


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_gather_object(self, obj) -> list:
        if not self.enabled:
            return [obj]
        out = [None] * self.world
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast_object(self, obj):
        if not self.enabled:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def all_reduce_mean_(self, tensor: torch.Tensor) -> torch.Tensor:
        """In-place mean over processes (a CPU tensor travels through the GPU under NCCL)."""
        if self.enabled:
            if self.backend == "nccl" and tensor.device.type != "cuda":
                on_gpu = tensor.to(torch.device("cuda", self.local_rank))
                torch.distributed.all_reduce(on_gpu)
                tensor.copy_(on_gpu.cpu())
            else:
                torch.distributed.all_reduce(tensor)
            tensor.div_(self.world)
        return tensor

    def any(self, flag: bool) -> bool:
        """True on every process when `flag` is true on at least one."""
        if not self.enabled:
            return bool(flag)
        value = torch.tensor([float(bool(flag))], dtype=torch.float64)
        return bool(self.all_reduce_mean_(value).item() > 0)

    def close(self) -> None:
        if self.enabled and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()


def init_distributed(device_spec: str) -> Dist:
    """Joins the torchrun group when WORLD_SIZE > 1; picks the backend from the device."""
    world = required_int("WORLD_SIZE", minimum=1, default=1)
    if world <= 1:
        return Dist()
    rank = required_int("RANK")
    local_rank = required_int("LOCAL_RANK", default=rank)
    spec = (device_spec or "auto").lower()
    use_cuda = torch.cuda.is_available() and spec != "cpu"
    backend = "nccl" if use_cuda else "gloo"
    if use_cuda:
        gpus = torch.cuda.device_count()
        if local_rank >= gpus:  # NCCL refuses two processes on one GPU; say so before it hangs or aborts
            raise TrainError(f"process {local_rank} has no GPU of its own: NCCL needs one GPU per process and "
                             f"this machine has {gpus}; use torchrun --nproc_per_node={gpus}, or --device cpu")
        torch.cuda.set_device(local_rank)
    else:
        local_world = required_int("LOCAL_WORLD_SIZE", minimum=1, default=world)
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    # Long timeout: captioning and feature extraction of a big shard can take hours.
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(hours=6))
    return Dist(rank=rank, world=world, local_rank=local_rank, backend=backend)
