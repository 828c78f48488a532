"""Stage 1 (Sec. 4.3): frozen features and the teacher probe h_img^T.

- t = E_text(z) of every caption, from the frozen CLIP text tower (used by stage 2's h_text);
- f^T = E_img^T(x) of view 0 of every image (the encoder with adapters disabled), split over
  the processes and cached in the run folder;
- h_img^T: a linear probe trained with BCE on f^T (authors: 3 epochs), then frozen.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dgs_desktop.atomic import atomic_path

from .batching import STAGE_PROBE, global_batches, mosaic_loader, view_keys
from .config import TrainConfig
from .data import Dataset
from .networks import Networks
from .rundir import MetricsLog
from .runtime import Runtime
from .step import bce

log = logging.getLogger(__name__)
TEXT_CHUNK = 256


@torch.no_grad()
def text_features(networks: Networks, tokenizer, captions: list[str], runtime: Runtime) -> torch.Tensor:
    """t = E_text(z) for every caption (frozen tower, unnormalised), float32 on the CPU."""
    detector = networks.detector
    out = []
    for start in range(0, len(captions), TEXT_CHUNK):
        tokens = tokenizer(captions[start:start + TEXT_CHUNK]).to(runtime.device)
        with runtime.autocast():
            out.append(detector.text_features(tokens).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, detector.embed_dim)


@torch.no_grad()
def teacher_features(networks: Networks, dataset: Dataset, config: TrainConfig, runtime: Runtime,
                     view: int = 0) -> torch.Tensor:
    """f^T of one view of every image (each process computes its share), float32 on the CPU."""
    from tqdm import tqdm

    dist, detector = runtime.dist, networks.detector
    n = len(dataset.samples)
    mine = np.arange(dist.rank, n, dist.world)
    batches = [mine[s:s + config.batch_size] for s in range(0, len(mine), config.batch_size)]
    parts, indices = [], []
    bar = tqdm(total=len(mine), desc="stage 1: teacher features", unit="img", disable=not runtime.progress,
               dynamic_ncols=True)
    loader = mosaic_loader(dataset, view_keys(batches, view), seed=config.seed, workers=config.workers,
                           pin_memory=runtime.device.type == "cuda")
    for x, _, idx in loader:
        with runtime.autocast():
            feats = detector.teacher_features(x.to(runtime.device, non_blocking=True))
        parts.append(feats.float().cpu())
        indices.append(idx)
        bar.update(len(idx))
    bar.close()
    local = (torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long),
             torch.cat(parts) if parts else torch.zeros(0, detector.embed_dim))
    features = torch.zeros(n, detector.embed_dim)
    for idx, feats in dist.all_gather_object(local):
        features[idx] = feats
    return features


def cached_teacher_features(path: Path, fingerprint: str, compute, runtime: Runtime) -> tuple[torch.Tensor, bool]:
    """The features saved at `path` for this `fingerprint`, else `compute()` saved there.

    Returns (features, whether they were read back). A damaged or foreign cache is recomputed.
    """
    from safetensors import safe_open
    from safetensors.torch import save_file

    if path.exists():
        try:
            with safe_open(str(path), "pt") as handle:
                if (handle.metadata() or {}).get("fingerprint") == fingerprint:
                    return handle.get_tensor("features"), True
        except Exception:  # noqa: BLE001 - a damaged cache is recomputed
            log.debug("teacher feature cache %s unreadable; recomputing", path)
    features = compute()
    if runtime.dist.is_main:
        with atomic_path(path) as tmp:
            save_file({"features": features.contiguous()}, str(tmp), metadata={"fingerprint": fingerprint})
    runtime.dist.barrier()
    return features, False


def train_probe(head: nn.Linear, features: torch.Tensor, labels: torch.Tensor, config: TrainConfig,
                runtime: Runtime, metrics: MetricsLog, started: float) -> int:
    """h_img^T: BCE on frozen features, Adam, --probe-epochs epochs (identical on all ranks).

    Returns the number of optimizer steps taken; the head is frozen afterwards.
    """
    from tqdm import tqdm

    lr = config.probe_lr or config.lr
    head.requires_grad_(True)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    feats, labels = features.to(runtime.device), labels.to(runtime.device)
    epochs = [global_batches(len(labels), config.batch_size, 1, config.seed, STAGE_PROBE, e)
              for e in range(config.probe_epochs)]
    total = sum(len(b) for b in epochs)
    if config.max_steps:
        total = min(total, config.max_steps)
    bar = tqdm(total=total, desc="stage 1: probe", unit="step", disable=not runtime.progress, dynamic_ncols=True)
    step = 0
    for epoch, batches in enumerate(epochs):
        for batch in batches:
            if config.max_steps and step >= config.max_steps:
                break
            index = torch.as_tensor(batch, device=runtime.device)
            loss = bce(head(feats[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            value = float(loss.detach())
            metrics.add(stage="probe", epoch=epoch, step=step, images=step * config.batch_size, loss=value, lr=lr,
                        elapsed_s=time.perf_counter() - started)
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update(1)
    bar.close()
    head.requires_grad_(False)
    return step
