"""Stage 2 (Sec. 4.4): the LoRA student, h_img and h_text trained with the surgered gradient.

`train_step` is one optimizer step over this process's micro-batches (no state besides
its arguments); `run_stage2` is the epoch loop around it: data order, teacher features
(from stage 1 for the epochs that show a view the probe saw, else a teacher forward), metrics, progress, resume state, Ctrl-C and the per-epoch callback (validation).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import cast

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .batching import STAGE_DGS, global_batches, micro_batches, mosaic_loader, view_keys
from .config import TrainConfig
from .networks import Networks
from .rundir import MetricsLog
from .runtime import Runtime
from .sources import SampleSet
from .state import Counters, Position, restore_rng
from .step import StepStats, SurgeryConfig, dgs_backward

log = logging.getLogger(__name__)


@dataclass
class MicroBatch:
    x: torch.Tensor  # (b, 3, 224, 224) mosaics on the device
    y: torch.Tensor  # (b,) labels, 1 = fake
    t: torch.Tensor  # (b, d) text features of the captions
    f_teacher: torch.Tensor | None  # (b, d) teacher features, None without prior alignment


def train_step(networks: Networks, student: nn.Module, micro: list[MicroBatch], optimizer, scaler,
               surgery: SurgeryConfig, runtime: Runtime, global_batch: int) -> StepStats:
    """One optimizer step: forward/backward of each micro-batch, head gradients averaged over
    processes (the encoder's through `student`, a DistributedDataParallel when distributed),
    then the optimizer step. Returns the step's statistics averaged over all processes.

    `global_batch` is B of the authors' lambda/B (all processes, all micro-batches).
    """
    dist = runtime.dist
    optimizer.zero_grad(set_to_none=True)
    stats_sum = torch.zeros(len(StepStats.FIELDS), dtype=torch.float64)
    for m, batch in enumerate(micro):
        last = m == len(micro) - 1
        # distributed, `student` is the vision tower's DistributedDataParallel
        sync = cast(DistributedDataParallel, student).no_sync() if dist.enabled and not last else nullcontext()
        with sync:
            with runtime.autocast():
                f = student(batch.x)
            _, stats = dgs_backward(f, batch.t, batch.f_teacher, batch.y, networks.detector.head, networks.h_text,
                                    networks.h_teacher, surgery,
                                    loss_scale=scaler.get_scale() if scaler.is_enabled() else 1.0,
                                    micro_batches=len(micro), global_batch=global_batch)
        stats_sum += stats.as_tensor() / len(micro)
    if dist.enabled:
        for p in networks.head_parameters():
            if p.grad is not None:
                dist.all_reduce_mean_(p.grad)
        dist.all_reduce_mean_(stats_sum)
    scaler.step(optimizer)
    scaler.update()
    return StepStats.from_tensor(stats_sum)


def load_micro_batch(item, networks: Networks, text: torch.Tensor, needs_teacher: bool,
                     cached: torch.Tensor | None, runtime: Runtime, counters: Counters) -> MicroBatch:
    """Moves a loader batch to the device with its t and f^T (from `cached`, the stage-1
    features of this view, or else a teacher forward)."""
    x, y, idx = item
    x, y = x.to(runtime.device, non_blocking=True), y.to(runtime.device)
    f_teacher = None
    if needs_teacher:
        if cached is not None:
            f_teacher = cached[idx].to(runtime.device)
            counters.teacher_cached_images += len(idx)
        else:
            with torch.no_grad(), runtime.autocast(), networks.detector.teacher():
                f_teacher = networks.detector.visual(x)
            counters.teacher_forward_images += len(idx)
    counters.student_images += len(idx)
    return MicroBatch(x=x, y=y, t=text[idx].to(runtime.device), f_teacher=f_teacher)


def run_stage2(networks: Networks, dataset: SampleSet, text: torch.Tensor, features: dict[int, torch.Tensor],
               config: TrainConfig, runtime: Runtime, metrics: MetricsLog, counters: Counters, *,
               resume: dict | None, started: float, save: Callable[[Position, object, object], None],
               stop_requested: Callable[[], bool], after_epoch: Callable[[int, int], None] | None = None) -> int:
    """The stage-2 epochs; returns the number of optimizer steps done (resumed ones included).

    `features` maps a view to its stage-1 f^T (epoch e shows view e); other epochs run the
    teacher forward. `save(position,
    optimizer, scaler)` writes the resume state (collective); `stop_requested()` is this
    process's Ctrl-C flag; `after_epoch(epoch, global_step)` runs after each full epoch.
    Raises KeyboardInterrupt after saving when any process was asked to stop.
    """
    from tqdm import tqdm

    dist = runtime.dist
    surgery = config.surgery_config()
    optimizer = torch.optim.Adam(networks.stage2_parameters(), lr=config.lr, betas=(0.9, 0.999))
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.amp_dtype == torch.float16)
    position = Position("dgs")
    if resume is not None and resume["stage"] == "dgs":
        optimizer.load_state_dict(resume["optimizer"])
        if resume.get("scaler"):
            scaler.load_state_dict(resume["scaler"])
        position = Position("dgs", resume["epoch"], resume["step_in_epoch"], resume["global_step"])
    if resume is not None:
        restore_rng(resume, runtime)

    visual = networks.detector.visual
    student: nn.Module = visual  # its DistributedDataParallel when distributed
    if dist.enabled:
        student = DistributedDataParallel(
            visual, device_ids=[runtime.device.index] if runtime.device.type == "cuda" else None)
    divisor = dist.world * config.accum
    n = len(dataset.samples)
    epochs = [global_batches(n, config.batch_size, divisor, config.seed, STAGE_DGS, e) for e in range(config.epochs)]
    total_steps = sum(len(b) for b in epochs)
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)
    global_step = position.global_step
    bar = tqdm(total=total_steps, initial=global_step, desc="stage 2: DGS", unit="step",
               disable=not runtime.progress, dynamic_ncols=True)
    networks.detector.train()
    try:
        for epoch in range(position.epoch, config.epochs):
            if config.max_steps and global_step >= config.max_steps:
                break
            batches = epochs[epoch]
            first = position.step_in_epoch if epoch == position.epoch else 0
            cached = features.get(epoch)
            flat = [m for b in batches[first:] for m in micro_batches(b, dist.rank, dist.world, config.accum)]
            loader = iter(mosaic_loader(dataset, view_keys(flat, epoch), seed=config.seed, workers=config.workers,
                                        pin_memory=runtime.device.type == "cuda")) if flat else iter(())
            for step_in_epoch in range(first, len(batches)):
                if config.max_steps and global_step >= config.max_steps:
                    break
                tick = time.perf_counter()
                micro = [load_micro_batch(next(loader), networks, text, surgery.needs_teacher, cached, runtime,
                                          counters) for _ in range(config.accum)]
                stats = train_step(networks, student, micro, optimizer, scaler, surgery, runtime,
                                   len(batches[step_in_epoch]))
                stop = dist.any(stop_requested())
                global_step += 1
                seconds = max(time.perf_counter() - tick, 1e-9)
                metrics.add(stage="dgs", epoch=epoch, step=global_step, images=global_step * config.batch_size,
                            loss=stats.loss, loss_img=stats.loss_img, loss_text=stats.loss_text,
                            loss_teacher=stats.loss_teacher, loss_align=stats.loss_align, acc=stats.acc,
                            lr=config.lr, images_per_s=config.batch_size / seconds,
                            elapsed_s=time.perf_counter() - started)
                bar.set_postfix(loss=f"{stats.loss:.4f}", acc=f"{stats.acc:.2f}",
                                ips=f"{config.batch_size / seconds:.1f}")
                bar.update(1)
                done_epoch = step_in_epoch + 1 == len(batches)
                if stop or done_epoch or (config.save_every and global_step % config.save_every == 0):
                    following = (Position("dgs", epoch + 1, 0, global_step) if done_epoch
                                 else Position("dgs", epoch, step_in_epoch + 1, global_step))
                    save(following, optimizer, scaler)
                if stop:
                    raise KeyboardInterrupt
                if done_epoch and after_epoch is not None:
                    after_epoch(epoch, global_step)
    finally:
        bar.close()
        networks.detector.eval()
    return global_step

