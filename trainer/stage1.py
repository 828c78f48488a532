"""Stage 1 (Sec. 4.3): frozen features and the teacher probe h_img^T.

- t = E_text(z) of every caption, from the frozen CLIP text tower (used by stage 2's h_text);
- f^T = E_img^T(x) of every image (the encoder with adapters disabled), split over the
  processes: probe epoch e sees view e (a fresh flip and patch shuffle each epoch, as the
  authors re-run their transform every epoch);
- h_img^T: a linear probe trained with BCE on f^T (authors: 3 epochs), then frozen.

Stage-2 epoch e shows view e too, so the features of the views both stages use (epochs
below min(--probe-epochs, --epochs)) are kept, in memory and in the run folder, and stage 2
needs no teacher forward for them.
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
from .networks import Networks
from .rundir import MetricsLog
from .runtime import Runtime
from .sources import SampleSet
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
def teacher_features(networks: Networks, dataset: SampleSet, config: TrainConfig, runtime: Runtime,
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


def shared_views(config: TrainConfig) -> list[int]:
    """The views whose f^T stage 2 takes from stage 1 instead of a teacher forward."""
    return list(range(min(config.probe_epochs, config.epochs))) if config.feature_cache else []


def read_feature_cache(path: Path, fingerprint: str) -> dict[int, torch.Tensor]:
    """view -> f^T saved for this run's fingerprint; {} when absent, foreign or damaged."""
    from safetensors import safe_open

    if not path.exists():
        return {}
    try:
        with safe_open(str(path), "pt") as handle:
            if (handle.metadata() or {}).get("fingerprint") != fingerprint:
                return {}
            return {int(key.removeprefix("view_")): handle.get_tensor(key) for key in handle.keys()}
    except Exception:  # noqa: BLE001 - a damaged cache is recomputed
        log.debug("teacher feature cache %s unreadable; recomputing", path)
        return {}


def write_feature_cache(path: Path, fingerprint: str, features: dict[int, torch.Tensor], runtime: Runtime) -> None:
    from safetensors.torch import save_file

    if runtime.dist.is_main:
        with atomic_path(path) as tmp:
            save_file({f"view_{v}": f.contiguous() for v, f in sorted(features.items())}, str(tmp),
                      metadata={"fingerprint": fingerprint})
    runtime.dist.barrier()


class TeacherFeatureStore:
    """f^T of whole views kept across runs in the user cache (`--cache-dir`), so a second run on
    the same images needs no teacher pass.

    A view's features depend on the frozen teacher (architecture, base weights), the precision,
    device type and torch version, the preprocessing, and the mosaics: each image's content (sha256), its
    position and the seed (which fix the flip and patch shuffle), and the batching. The file
    name is the sha256 of all of these, so a hit is exactly what the teacher would compute.
    """

    def __init__(self, folder: Path, key: str, runtime: Runtime):
        self.folder, self.key, self.runtime = folder, key, runtime

    @classmethod
    def for_run(cls, config: TrainConfig, runtime: Runtime, shas: list[str]) -> TeacherFeatureStore:
        import hashlib
        import json

        from dgs_desktop.detector.patches import preprocessing_manifest

        from .captions import default_cache_dir

        digest = hashlib.sha256(json.dumps({
            "arch": config.arch, "pretrained": config.pretrained, "precision": runtime.precision,
            "device": runtime.device.type, "preprocessing": preprocessing_manifest(), "seed": config.seed,
            "batch_size": config.batch_size, "processes": runtime.dist.world,
            "torch": torch.__version__}, sort_keys=True).encode())  # kernels (and random init) may change
        for sha in shas:
            digest.update(sha.encode() + b"\n")
        folder = (Path(config.cache_dir) if config.cache_dir else default_cache_dir()) / "teacher_features"
        return cls(folder, digest.hexdigest(), runtime)

    def path(self, view: int) -> Path:
        return self.folder / f"{self.key[:40]}.view{view}.safetensors"

    def get(self, view: int) -> torch.Tensor | None:
        """The stored features of `view` when every process can read them, else None."""
        from safetensors import safe_open

        tensor = None
        try:
            with safe_open(str(self.path(view)), "pt") as handle:
                if (handle.metadata() or {}).get("key") == self.key:
                    tensor = handle.get_tensor("features")
        except Exception:  # noqa: BLE001 - absent or damaged: computed again
            tensor = None
        if not all(self.runtime.dist.all_gather_object(tensor is not None)):
            return None
        return tensor

    def put(self, view: int, features: torch.Tensor) -> None:
        from safetensors.torch import save_file

        if self.runtime.dist.is_main:
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
                with atomic_path(self.path(view)) as tmp:
                    save_file({"features": features.contiguous()}, str(tmp), metadata={"key": self.key})
            except OSError as exc:  # a full or read-only cache costs the next run time, not this one
                log.warning("could not keep the teacher features in %s: %s", self.folder, exc)
        self.runtime.dist.barrier()


def run_stage1(networks: Networks, dataset: SampleSet, config: TrainConfig, runtime: Runtime, metrics: MetricsLog, *,
               cache_path: Path, fingerprint: str, train: bool, started: float,
               store: TeacherFeatureStore | None = None) -> tuple[dict[int, torch.Tensor], int, bool]:
    """Trains h_img^T (when `train`; a resumed run has it already) and returns the f^T of the
    shared views, the probe's step count and whether features came from the run folder."""
    keep = shared_views(config)
    cached = read_feature_cache(cache_path, fingerprint)
    computed: dict[int, torch.Tensor] = {}

    def features_of(view: int) -> torch.Tensor:
        if view in cached:
            return cached[view]
        if view in computed:
            return computed[view]
        features = store.get(view) if store is not None else None
        if features is not None and store is not None and runtime.dist.is_main:
            log.info("teacher features of view %d: from %s (an earlier run on the same images)", view,
                     store.path(view))
        if features is None:
            features = teacher_features(networks, dataset, config, runtime, view=view)
            if store is not None:
                store.put(view, features)
        if view in keep:  # the others are dropped after their probe epoch
            computed[view] = features
        return features

    steps = 0
    if train:
        labels = torch.as_tensor(dataset.labels, dtype=torch.float32)
        steps = train_probe(networks.h_teacher, features_of, labels, config, runtime, metrics, started)
    shared = {view: features_of(view) for view in keep}
    if any(view in computed for view in keep):
        write_feature_cache(cache_path, fingerprint, shared, runtime)
    return shared, steps, any(view in cached for view in keep)


def train_probe(head: nn.Linear, features_of, labels: torch.Tensor, config: TrainConfig, runtime: Runtime,
                metrics: MetricsLog, started: float) -> int:
    """h_img^T: BCE on frozen features, Adam, --probe-epochs epochs (identical on all ranks).

    Epoch e trains on `features_of(e)`, the f^T of view e. Returns the number of optimizer steps; the head is frozen afterwards.
    """
    from tqdm import tqdm

    lr = config.probe_lr or config.lr
    head.requires_grad_(True)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    labels = labels.to(runtime.device)
    epochs = [global_batches(len(labels), config.batch_size, 1, config.seed, STAGE_PROBE, e)
              for e in range(config.probe_epochs)]
    total = sum(len(b) for b in epochs)
    if config.max_steps:
        total = min(total, config.max_steps)
    bar = tqdm(total=total, desc="stage 1: probe", unit="step", disable=not runtime.progress, dynamic_ncols=True)
    step = 0
    for epoch, batches in enumerate(epochs):
        if config.max_steps and step >= config.max_steps:
            break
        feats = features_of(epoch).to(runtime.device)
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
        del feats
    bar.close()
    head.requires_grad_(False)
    return step
