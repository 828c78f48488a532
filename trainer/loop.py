"""The two-stage DGS-Net training run (Sections 4-5) with resume and data parallelism.

1. index: decode every image once (sha256, unreadable files listed and skipped);
2. captions: BLIP (or --captions FILE), cached on disk by content hash; text features t
   from the frozen CLIP text tower, once per image;
3. stage 1: teacher features f^T of view 0 of every image, computed once (cached in the run
   folder), and the linear probe h_img^T trained on them (authors: 3 epochs), then frozen;
4. stage 2: LoRA student + h_img + h_text with the surgered gradient (trainer.step); the
   first epoch sees exactly the stage-1 inputs (view 0), so f^T comes from the cache; later
   epochs (new flips/shuffles) run the teacher pass (the same backbone, adapters disabled).

Rank 0 writes the run folder (`<out>.run/`: state.pt, metrics.csv, loss.png, caches) and the
checkpoint. `--resume` reloads state.pt, saved every --save-every steps, at each epoch end
and on Ctrl-C; a seeded run resumed from it ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from dgs_desktop.atomic import atomic_path

from .data import Dataset, MosaicDataset, collate_mosaics, discover, drop_unreadable, format_unreadable
from .distributed import Dist, init_distributed
from .errors import TrainError
from .step import StepStats, SurgeryConfig, bce, dgs_backward

STATE_FILE = "state.pt"
FEATURES_FILE = "teacher_features.safetensors"
METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"
STATE_VERSION = 1
METRIC_COLUMNS = ("stage", "epoch", "step", "images", "loss", "loss_img", "loss_text", "loss_teacher",
                  "loss_align", "acc", "lr", "images_per_s", "elapsed_s", "val_acc", "val_ap")


@dataclass
class TrainConfig:
    data: str
    out: str
    val: str | None = None
    arch: str = "ViT-L-14"
    pretrained: str | None = "openai"
    captioner: str = "Salesforce/blip-image-captioning-base"
    captions: str | None = None
    max_steps: int | None = None
    epochs: int = 1
    probe_epochs: int = 3
    batch_size: int = 32
    accum: int = 1
    lr: float = 1e-4
    probe_lr: float | None = None
    lam: float = 0.2
    surgery: str = "paper"
    orthogonal_suppression: bool = True
    prior_alignment: bool = True
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"  # auto (bf16 on CUDA), bf16, fp16 (with GradScaler), off
    resume: bool = False
    workers: int = 2
    save_every: int = 200
    run_dir: str | None = None
    cache_dir: str | None = None
    feature_cache: bool = True
    bundle_base: bool = False
    progress: bool = True
    lora_r: int = 6
    lora_alpha: float = 6.0
    lora_dropout: float = 0.8

    def surgery_config(self) -> SurgeryConfig:
        return SurgeryConfig(lam=self.lam, mode=self.surgery, orthogonal_suppression=self.orthogonal_suppression,
                             prior_alignment=self.prior_alignment)

    def fingerprint_fields(self) -> dict:
        """What must not change between a run and its --resume."""
        skip = {"out", "val", "max_steps", "epochs", "resume", "workers", "save_every", "run_dir", "cache_dir",
                "progress", "device", "captions", "captioner"}
        return {k: v for k, v in asdict(self).items() if k not in skip}


@dataclass
class Counters:
    teacher_forward_images: int = 0  # images that went through a teacher forward in stage 2
    teacher_cached_images: int = 0  # images whose stage-2 f^T came from the stage-1 cache
    student_images: int = 0
    feature_cache_loaded: bool = False  # the stage-1 features were read back from the run folder


def run_dir_for(config: TrainConfig) -> Path:
    if config.run_dir:
        return Path(config.run_dir)
    out = Path(config.out)
    return out.with_name(out.name + ".run")


# ------------------------------------------------------------------------ small helpers
def _log(dist: Dist, message: str) -> None:
    if dist.is_main:
        print(message, file=sys.stderr, flush=True)


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _amp_dtype(config: TrainConfig, device: torch.device):
    mode = config.amp
    if mode == "auto":
        mode = "bf16" if device.type == "cuda" else "off"
    if mode == "off":
        return None
    if device.type != "cuda":
        raise TrainError(f"--amp {config.amp} needs a CUDA device (bf16 autocast is slower than fp32 on CPU)")
    return torch.bfloat16 if mode == "bf16" else torch.float16


def _autocast(device: torch.device, dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype is not None else nullcontext()


def global_batches(n: int, batch_size: int, divisor: int, seed: int, stage: int, epoch: int) -> list[np.ndarray]:
    """The epoch's global batches: a seeded permutation cut into `batch_size` pieces; a last
    partial batch is trimmed to a multiple of `divisor` (ranks x micro-batches) so every
    micro-batch of a step has the same size and the averaged gradient is the batch mean."""
    order = np.random.default_rng([int(seed) & 0xFFFFFFFF, stage, epoch, 0xB47C]).permutation(n)
    batches = []
    for start in range(0, n, batch_size):
        chunk = order[start:start + batch_size]
        chunk = chunk[: len(chunk) - len(chunk) % divisor]
        if len(chunk):
            batches.append(chunk)
    return batches


def micro_batches(batch: np.ndarray, rank: int, world: int, accum: int) -> list[np.ndarray]:
    mine = batch.reshape(world * accum, -1)  # equal pieces (global_batches guarantees it)
    return [mine[rank * accum + m] for m in range(accum)]


class MetricsLog:
    """metrics.csv in the run folder (rank 0), kept consistent with the saved state on resume."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled
        self.rows: list[dict] = []

    def load(self, keep) -> None:
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            self.rows = [row for row in csv.DictReader(handle) if keep(row)]
        self._rewrite()

    def add(self, **values) -> None:
        row = {k: "" for k in METRIC_COLUMNS}
        for key, value in values.items():
            row[key] = f"{value:.6g}" if isinstance(value, float) else str(value)
        self.rows.append(row)
        if self.enabled:
            new = not self.path.exists()
            with open(self.path, "a", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, lineterminator="\n")
                if new:
                    writer.writeheader()
                writer.writerow(row)

    def _rewrite(self) -> None:
        if not self.enabled:
            return
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, path: Path) -> None:
        if not self.enabled:
            return
        from .plot import plot_panels

        def series(stage: str, key: str):
            pts = []
            for row in self.rows:
                if row["stage"] == stage and row.get(key, "") not in ("", None):
                    pts.append((float(row["step"]), float(row[key])))
            return pts

        plot_panels(path, [
            ("stage 1: teacher probe h_img^T (BCE)", {"loss": series("probe", "loss")}),
            ("stage 2: DGS losses", {k: series("dgs", k) for k in ("loss", "loss_img", "loss_text", "loss_teacher")}),
            ("stage 2: L_align and accuracy", {"loss_align": series("dgs", "loss_align"),
                                                "acc": series("dgs", "acc"), "val_acc": series("val", "val_acc")}),
        ])


# -------------------------------------------------------------------------- the trainer
class Trainer:
    def __init__(self, config: TrainConfig, dist: Dist | None = None):
        from dgs_desktop.detector.device import DeviceError, resolve_device

        self.config = config
        self.dist = dist or Dist()
        try:
            device = resolve_device(config.device)
        except DeviceError as exc:
            raise TrainError(str(exc)) from None
        if self.dist.enabled and device.type == "cuda":
            device = torch.device("cuda", self.dist.local_rank)
        self.device = device
        self.amp_dtype = _amp_dtype(config, device)
        self.surgery = config.surgery_config()
        if config.surgery not in ("paper", "reference"):
            raise TrainError(f"--surgery must be paper or reference, not {config.surgery!r}")
        if config.batch_size < 1 or config.accum < 1:
            raise TrainError("--batch-size and --accum must be at least 1")
        self.divisor = self.dist.world * config.accum
        if config.batch_size % self.divisor:
            raise TrainError(f"--batch-size {config.batch_size} must be divisible by processes x --accum "
                             f"({self.dist.world} x {config.accum})")
        self.run_dir = run_dir_for(config)
        self.counters = Counters()
        self.interrupted = False
        self.metrics = MetricsLog(self.run_dir / METRICS_FILE, self.dist.is_main)
        self.started = time.perf_counter()

    # ---------------------------------------------------------------- preparation
    def prepare_run_dir(self) -> None:
        out = Path(self.config.out)
        if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "dgs_checkpoint.json").exists())):
            raise TrainError(f"--out {out} exists and is not a DGS checkpoint folder; choose a new folder")
        state = self.run_dir / STATE_FILE
        if self.config.resume and not state.exists():
            raise TrainError(f"--resume: no saved state in {self.run_dir} (nothing to resume)")
        if not self.config.resume and state.exists():
            raise TrainError(f"{self.run_dir} holds the state of an earlier run; pass --resume to continue it "
                             f"or remove the folder to start again")
        if self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            if not self.config.resume:
                for name in (METRICS_FILE, PLOT_FILE):
                    (self.run_dir / name).unlink(missing_ok=True)
        self.dist.barrier()

    def index(self, dataset: Dataset) -> tuple[Dataset, list[str]]:
        """Decodes every image once (split over ranks): sha256 per file, unreadable ones dropped."""
        from concurrent.futures import ThreadPoolExecutor

        from tqdm import tqdm

        from dgs_desktop.scan.decode import DecodeError, decode_image

        def check(i: int):
            try:
                return i, decode_image(dataset.samples[i].path).sha256, None
            except DecodeError as exc:
                return i, None, str(exc)

        mine = list(range(self.dist.rank, len(dataset.samples), self.dist.world))
        results = []
        with ThreadPoolExecutor(max(1, self.config.workers)) as pool:
            for item in tqdm(pool.map(check, mine), total=len(mine), desc="reading images", unit="img",
                             disable=not (self.config.progress and self.dist.is_main), dynamic_ncols=True):
                results.append(item)
        merged = [r for part in self.dist.all_gather_object(results) for r in part]
        shas: dict[int, str] = {}
        failures: dict[int, str] = {}
        for i, sha, err in merged:
            if err is None:
                shas[i] = sha
            else:
                failures[i] = err
        cleaned = drop_unreadable(dataset, failures)
        if failures:
            _log(self.dist, f"warning: {len(failures)} unreadable image(s) skipped:\n"
                            + format_unreadable(cleaned.unreadable))
        return cleaned, [shas[i] for i in sorted(shas)]

    def data_fingerprint(self, dataset: Dataset, shas: list[str]) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps(self.config.fingerprint_fields(), sort_keys=True).encode())
        for sample, sha in zip(dataset.samples, shas):
            digest.update(f"{sample.rel}\0{sample.label}\0{sha}\n".encode())
        return digest.hexdigest()

    def build(self):
        from dgs_desktop.detector.backbone import BackboneError, tokenizer_for
        from dgs_desktop.detector.model import LoraSettings, build_detector

        torch.manual_seed(self.config.seed)
        lora = LoraSettings(r=self.config.lora_r, alpha=self.config.lora_alpha, dropout=self.config.lora_dropout)
        try:
            detector = build_detector(self.config.arch, self.config.pretrained, lora, with_text=True)
        except BackboneError as exc:
            raise TrainError(str(exc)) from None
        dim = detector.embed_dim
        self.h_text = nn.Linear(dim, 1)
        self.h_teacher = nn.Linear(dim, 1)
        self.h_teacher.requires_grad_(False)
        self.detector = detector.to(self.device)
        self.h_text.to(self.device)
        self.h_teacher.to(self.device)
        self.tokenizer = tokenizer_for(self.config.arch)

    def loader(self, dataset: Dataset, batches: list[np.ndarray], view_of) -> torch.utils.data.DataLoader:
        """Batches of (inputs, labels, indices) in the given order; `view_of(batch_no)` is the view."""
        keys = [[(int(i), view_of(b)) for i in batch] for b, batch in enumerate(batches)]
        workers = max(0, self.config.workers)
        return torch.utils.data.DataLoader(
            MosaicDataset(dataset.samples, self.config.seed), batch_sampler=keys, num_workers=workers,
            collate_fn=collate_mosaics, pin_memory=self.device.type == "cuda",
            persistent_workers=False, prefetch_factor=4 if workers else None,
            generator=torch.Generator().manual_seed(self.config.seed))

    @torch.no_grad()
    def text_features(self, captions: list[str]) -> torch.Tensor:
        """t = E_text(z) for every caption (frozen tower, unnormalised), float32 on the CPU."""
        out = []
        chunk = 256
        for start in range(0, len(captions), chunk):
            tokens = self.tokenizer(captions[start:start + chunk]).to(self.device)
            with _autocast(self.device, self.amp_dtype):
                out.append(self.detector.text_features(tokens).float().cpu())
        return torch.cat(out) if out else torch.zeros(0, self.detector.embed_dim)

    @torch.no_grad()
    def teacher_features(self, dataset: Dataset) -> torch.Tensor:
        """f^T of view 0 of every image (split over ranks), float32 on the CPU."""
        from tqdm import tqdm

        n = len(dataset.samples)
        mine = np.arange(self.dist.rank, n, self.dist.world)
        batches = [mine[s:s + self.config.batch_size] for s in range(0, len(mine), self.config.batch_size)]
        parts, indices = [], []
        bar = tqdm(total=len(mine), desc="stage 1: teacher features", unit="img",
                   disable=not (self.config.progress and self.dist.is_main), dynamic_ncols=True)
        for x, _, idx in self.loader(dataset, batches, lambda b: 0):
            with _autocast(self.device, self.amp_dtype):
                feats = self.detector.teacher_features(x.to(self.device, non_blocking=True))
            parts.append(feats.float().cpu())
            indices.append(idx)
            bar.update(len(idx))
        bar.close()
        local = (torch.cat(indices) if indices else torch.zeros(0, dtype=torch.long),
                 torch.cat(parts) if parts else torch.zeros(0, self.detector.embed_dim))
        features = torch.zeros(n, self.detector.embed_dim)
        for idx, feats in self.dist.all_gather_object(local):
            features[idx] = feats
        return features

    def load_or_compute_features(self, dataset: Dataset, fingerprint: str) -> torch.Tensor:
        from safetensors import safe_open
        from safetensors.torch import save_file

        path = self.run_dir / FEATURES_FILE
        if path.exists():
            try:
                with safe_open(str(path), "pt") as handle:
                    if (handle.metadata() or {}).get("fingerprint") == fingerprint:
                        self.counters.feature_cache_loaded = True
                        return handle.get_tensor("features")
            except Exception:  # noqa: BLE001 - a damaged cache is recomputed
                pass
        features = self.teacher_features(dataset)
        if self.dist.is_main:
            with atomic_path(path) as tmp:
                save_file({"features": features.contiguous()}, str(tmp), metadata={"fingerprint": fingerprint})
        self.dist.barrier()
        return features

    # ------------------------------------------------------------------- stage 1
    def train_probe(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """h_img^T: BCE on frozen features, Adam, --probe-epochs epochs (identical on all ranks)."""
        from tqdm import tqdm

        cfg = self.config
        head = self.h_teacher
        head.requires_grad_(True)
        optimizer = torch.optim.Adam(head.parameters(), lr=cfg.probe_lr or cfg.lr)
        feats, labels = features.to(self.device), labels.to(self.device)
        step = 0
        total = sum(len(global_batches(len(labels), cfg.batch_size, 1, cfg.seed, 1, e)) for e in range(cfg.probe_epochs))
        if cfg.max_steps:
            total = min(total, cfg.max_steps)
        bar = tqdm(total=total, desc="stage 1: probe", unit="step",
                   disable=not (cfg.progress and self.dist.is_main), dynamic_ncols=True)
        for epoch in range(cfg.probe_epochs):
            for batch in global_batches(len(labels), cfg.batch_size, 1, cfg.seed, 1, epoch):
                if cfg.max_steps and step >= cfg.max_steps:
                    break
                index = torch.as_tensor(batch, device=self.device)
                loss = bce(head(feats[index]), labels[index])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                step += 1
                self.metrics.add(stage="probe", epoch=epoch, step=step, images=step * cfg.batch_size,
                                 loss=float(loss.detach()), lr=cfg.probe_lr or cfg.lr,
                                 elapsed_s=time.perf_counter() - self.started)
                bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
                bar.update(1)
        bar.close()
        head.requires_grad_(False)
        self.probe_steps = step

    # ------------------------------------------------------------------- stage 2
    def trainable_parameters(self) -> list[nn.Parameter]:
        params = [p for p in self.detector.visual.parameters() if p.requires_grad]
        return params + list(self.detector.head.parameters()) + list(self.h_text.parameters())

    def state_dict(self, stage: str, epoch: int, step_in_epoch: int, global_step: int, optimizer, scaler) -> dict:
        rng = self.dist.all_gather_object(torch.get_rng_state())
        cuda_rng = self.dist.all_gather_object(torch.cuda.get_rng_state(self.device)
                                               if self.device.type == "cuda" else torch.zeros(0, dtype=torch.uint8))
        return {
            "version": STATE_VERSION, "fingerprint": self.fingerprint, "world": self.dist.world,
            "stage": stage, "epoch": epoch, "step_in_epoch": step_in_epoch, "global_step": global_step,
            "probe_steps": getattr(self, "probe_steps", 0),
            "lora": {k: v.cpu() for k, v in self.detector.lora_state_dict().items()},
            "h_img": {k: v.detach().cpu() for k, v in self.detector.head.state_dict().items()},
            "h_text": {k: v.detach().cpu() for k, v in self.h_text.state_dict().items()},
            "h_teacher": {k: v.detach().cpu() for k, v in self.h_teacher.state_dict().items()},
            "optimizer": optimizer.state_dict() if optimizer is not None else {},
            "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
            "rng": rng, "cuda_rng": cuda_rng, "counters": asdict(self.counters),
            "elapsed_s": time.perf_counter() - self.started,
        }

    def save_state(self, *args) -> None:
        state = self.state_dict(*args)  # collective: every rank takes part
        if self.dist.is_main:
            _atomic_torch_save(state, self.run_dir / STATE_FILE)
            self.metrics.plot(self.run_dir / PLOT_FILE)
        self.dist.barrier()

    def load_state(self) -> dict:
        try:
            state = torch.load(self.run_dir / STATE_FILE, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001
            raise TrainError(f"cannot read the saved state in {self.run_dir}: {exc}") from None
        if state.get("version") != STATE_VERSION:
            raise TrainError(f"the saved state in {self.run_dir} comes from another trainer version")
        if state.get("fingerprint") != self.fingerprint:
            raise TrainError(f"--resume: the data or hyper-parameters differ from the saved run in {self.run_dir}")
        if state.get("world") != self.dist.world:
            raise TrainError(f"--resume: the saved run used {state.get('world')} process(es), this one "
                             f"{self.dist.world}; resume with the same number")
        self.detector.load_lora_state_dict({k: v.to(self.device) for k, v in state["lora"].items()})
        self.detector.head.load_state_dict(state["h_img"])
        self.h_text.load_state_dict(state["h_text"])
        self.h_teacher.load_state_dict(state["h_teacher"])
        self.probe_steps = int(state.get("probe_steps", 0))
        return state

    def train_dgs(self, dataset: Dataset, text: torch.Tensor, features: torch.Tensor, state: dict | None) -> None:
        from tqdm import tqdm

        cfg = self.config
        params = self.trainable_parameters()
        optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=(0.9, 0.999))
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
        start_epoch, start_step, global_step = 0, 0, 0
        if state is not None and state["stage"] == "dgs":
            optimizer.load_state_dict(state["optimizer"])
            if state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            start_epoch, start_step, global_step = state["epoch"], state["step_in_epoch"], state["global_step"]
            self.counters = Counters(**state["counters"])
        if state is not None:
            torch.set_rng_state(state["rng"][self.dist.rank])
            if self.device.type == "cuda" and len(state["cuda_rng"][self.dist.rank]):
                torch.cuda.set_rng_state(state["cuda_rng"][self.dist.rank], self.device)

        visual = self.detector.visual
        student = visual
        if self.dist.enabled:
            from torch.nn.parallel import DistributedDataParallel

            student = DistributedDataParallel(
                visual, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        self.detector.train()
        n = len(dataset.samples)
        steps_per_epoch = [len(global_batches(n, cfg.batch_size, self.divisor, cfg.seed, 2, e)) for e in range(cfg.epochs)]
        total_steps = sum(steps_per_epoch)
        if cfg.max_steps:
            total_steps = min(total_steps, cfg.max_steps)
        bar = tqdm(total=total_steps, initial=global_step, desc="stage 2: DGS", unit="step",
                   disable=not (cfg.progress and self.dist.is_main), dynamic_ncols=True)
        head_params = list(self.detector.head.parameters()) + list(self.h_text.parameters())
        previous_handler = _install_interrupt(self)
        try:
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.max_steps and global_step >= cfg.max_steps:
                    break
                batches = global_batches(n, cfg.batch_size, self.divisor, cfg.seed, 2, epoch)
                first = start_step if epoch == start_epoch else 0
                use_cache = cfg.feature_cache and epoch == 0
                need_teacher = self.surgery.needs_teacher
                micro_lists = [micro_batches(b, self.dist.rank, self.dist.world, cfg.accum) for b in batches[first:]]
                flat = [m for micros in micro_lists for m in micros]
                loader = iter(self.loader(dataset, flat, lambda b, e=epoch: e)) if flat else iter(())
                for step_in_epoch in range(first, len(batches)):
                    if cfg.max_steps and global_step >= cfg.max_steps:
                        break
                    tick = time.perf_counter()
                    optimizer.zero_grad(set_to_none=True)
                    stats_sum = torch.zeros(len(StepStats.FIELDS) + 1, dtype=torch.float64)
                    for m in range(cfg.accum):
                        x, y, idx = next(loader)
                        x, y = x.to(self.device, non_blocking=True), y.to(self.device)
                        t = text[idx].to(self.device)
                        f_teacher = None
                        if need_teacher:
                            if use_cache:
                                f_teacher = features[idx].to(self.device)
                                self.counters.teacher_cached_images += len(idx)
                            else:
                                with torch.no_grad(), _autocast(self.device, self.amp_dtype), self.detector.teacher():
                                    f_teacher = visual(x)
                                self.counters.teacher_forward_images += len(idx)
                        sync = nullcontext() if (m == cfg.accum - 1 or not self.dist.enabled) else student.no_sync()
                        with sync:
                            with _autocast(self.device, self.amp_dtype):
                                f = student(x)
                            _, stats = dgs_backward(f, t, f_teacher, y, self.detector.head, self.h_text,
                                                    self.h_teacher, self.surgery, loss_scale=scaler.get_scale()
                                                    if scaler.is_enabled() else 1.0, micro_batches=cfg.accum)
                        stats_sum[:-1] += stats.as_tensor() / cfg.accum
                        self.counters.student_images += len(idx)
                    if self.dist.enabled:
                        for p in head_params:
                            if p.grad is not None:
                                self.dist.all_reduce_mean_(p.grad)
                    stats_sum[-1] = float(self.interrupted)
                    if self.dist.enabled:
                        flag = stats_sum[-1].item()
                        torch.distributed.all_reduce(stats_sum)
                        stats_sum[:-1] /= self.dist.world
                        stats_sum[-1] = float(stats_sum[-1] > 0 or flag > 0)
                    scaler.step(optimizer)
                    scaler.update()
                    global_step += 1
                    stats = StepStats.from_tensor(stats_sum[:-1])
                    elapsed = time.perf_counter() - tick
                    self.metrics.add(stage="dgs", epoch=epoch, step=global_step, images=global_step * cfg.batch_size,
                                     loss=stats.loss, loss_img=stats.loss_img, loss_text=stats.loss_text,
                                     loss_teacher=stats.loss_teacher, loss_align=stats.loss_align, acc=stats.acc,
                                     lr=cfg.lr, images_per_s=cfg.batch_size / max(elapsed, 1e-9),
                                     elapsed_s=time.perf_counter() - self.started)
                    bar.set_postfix(loss=f"{stats.loss:.4f}", acc=f"{stats.acc:.2f}",
                                    ips=f"{cfg.batch_size / max(elapsed, 1e-9):.1f}")
                    bar.update(1)
                    done_epoch = step_in_epoch + 1 == len(batches)
                    stop = bool(stats_sum[-1] > 0)
                    if stop or done_epoch or (cfg.save_every and global_step % cfg.save_every == 0):
                        next_epoch, next_step = (epoch + 1, 0) if done_epoch else (epoch, step_in_epoch + 1)
                        self.save_state("dgs", next_epoch, next_step, global_step, optimizer, scaler)
                    if stop:
                        raise KeyboardInterrupt
                start_step = 0
        finally:
            bar.close()
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            self.detector.eval()
        self.global_step = global_step

    # ------------------------------------------------------------------- the run
    def run(self) -> Path:
        cfg = self.config
        dataset = discover(cfg.data)
        val = discover(cfg.val, require_both=False) if cfg.val else None
        self.prepare_run_dir()
        _log(self.dist, f"training data {dataset.root}: {len(dataset.samples)} images in "
                        f"{len(dataset.counts())} subset(s); device {self.device}, {self.dist.world} process(es)")
        dataset, shas = self.index(dataset)
        self.fingerprint = self.data_fingerprint(dataset, shas)
        self.build()
        state = self.load_state() if cfg.resume else None
        if state is None:
            self.metrics.load(lambda row: False)
        else:
            done = int(state["global_step"]) if state["stage"] == "dgs" else 0
            self.metrics.load(lambda row: row["stage"] == "probe" or (row["stage"] == "dgs" and int(row["step"]) <= done))
            _log(self.dist, f"resuming from {self.run_dir / STATE_FILE} (stage 2 step {done})")

        from .captions import resolve_captions

        captions, caption_info = resolve_captions(
            dataset.samples, shas, captioner=cfg.captioner, captions_file=cfg.captions, device=self.device,
            batch_size=cfg.batch_size, cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
            progress=cfg.progress and self.dist.is_main, dist=self.dist if self.dist.enabled else None)
        text = self.text_features(captions)

        # Without prior alignment h_img^T and f^T are never used: stage 1 is skipped.
        features = torch.zeros(0)
        if self.surgery.needs_teacher:
            features = self.load_or_compute_features(dataset, self.fingerprint)
        if state is None:
            if self.surgery.needs_teacher:
                self.train_probe(features, torch.as_tensor(dataset.labels, dtype=torch.float32))
            else:
                _log(self.dist, "prior alignment is off: stage 1 (teacher probe) skipped")
            torch.manual_seed(cfg.seed * 1009 + 17 + self.dist.rank)  # per-rank LoRA-dropout streams
            self.save_state("probe", 0, 0, 0, None, None)
        try:
            self.train_dgs(dataset, text, features, state)
        except KeyboardInterrupt:
            _log(self.dist, f"\ninterrupted: state saved in {self.run_dir}; continue with the same command and --resume")
            raise
        return self.finish(dataset, val, caption_info)

    def finish(self, dataset: Dataset, val: Dataset | None, caption_info: dict) -> Path:
        from dgs_desktop import __version__
        from dgs_desktop.detector.checkpoint import save_checkpoint

        cfg = self.config
        final_metrics: dict = {}
        last = [r for r in self.metrics.rows if r["stage"] == "dgs"]
        if last:
            final_metrics["train_last_step"] = {k: float(last[-1][k]) for k in StepStats.FIELDS if last[-1][k] != ""}
        if val is not None and self.dist.is_main:
            from .evaluate import evaluate_detector, summary

            result = evaluate_detector(self.detector, val, self.device, batch_size=cfg.batch_size,
                                       workers=max(1, cfg.workers), progress=cfg.progress)
            final_metrics["val"] = summary(result)
            mean = result.mean
            self.metrics.add(stage="val", epoch=cfg.epochs, step=getattr(self, "global_step", 0),
                             val_acc=mean.get("acc", math.nan), val_ap=mean.get("ap", math.nan))
        out = Path(cfg.out)
        if self.dist.is_main:
            import open_clip
            import peft
            import transformers

            base = "random-init" if cfg.arch == "test-tiny" or not cfg.pretrained else cfg.pretrained
            provenance = {
                "trainer": "dgs-desktop-train",
                "data_root": str(dataset.root.resolve()),
                "counts": dataset.counts(),
                "images": len(dataset.samples),
                "unreadable_skipped": len(dataset.unreadable),
                "hyperparameters": {
                    "optimizer": "Adam", "lr": cfg.lr, "betas": [0.9, 0.999], "batch_size": cfg.batch_size,
                    "accumulation": cfg.accum, "epochs": cfg.epochs, "max_steps": cfg.max_steps,
                    "steps": getattr(self, "global_step", 0), "probe_epochs": cfg.probe_epochs,
                    "probe_lr": cfg.probe_lr or cfg.lr, "probe_steps": getattr(self, "probe_steps", 0),
                    "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "fp32",
                    "augmentation": "horizontal flip p=0.5 + seeded patch shuffle, view 0 in stage 1 and "
                                    "stage-2 epoch 1"},
                "surgery": self.surgery.to_manifest(),
                "seed": cfg.seed,
                "processes": self.dist.world,
                "captions": caption_info,
                "teacher_features": {
                    "stage1_cache_used_in_stage2": self.counters.teacher_cached_images > 0,
                    "cached_images": self.counters.teacher_cached_images,
                    "teacher_forward_images": self.counters.teacher_forward_images,
                    "loaded_from_run_folder": self.counters.feature_cache_loaded},
                "versions": {"dgs_desktop": __version__, "torch": torch.__version__,
                             "open_clip": getattr(open_clip, "__version__", "?"), "peft": peft.__version__,
                             "transformers": transformers.__version__, "python": sys.version.split()[0]},
                "final_metrics": final_metrics,
            }
            save_checkpoint(out, self.detector.to("cpu"), architecture=cfg.arch, base_weights=base,
                            bundle_base=cfg.bundle_base or (cfg.arch != "test-tiny" and not cfg.pretrained),
                            threshold=0.5, provenance=provenance,
                            extra_heads={"h_text": self.h_text.cpu(), "h_img_T": self.h_teacher.cpu()})
            self.metrics.plot(self.run_dir / PLOT_FILE)
            _log(self.dist, f"checkpoint written to {out} (run folder {self.run_dir})")
        self.dist.barrier()
        return out


def _install_interrupt(trainer: Trainer):
    """First Ctrl-C: finish the step, save, stop. A second one aborts at once."""
    def handler(signum, frame):
        if trainer.interrupted:
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        trainer.interrupted = True
        print("\nCtrl-C: saving after this step (press again to abort now)", file=sys.stderr, flush=True)

    try:
        return signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread
        return None


def train(config: TrainConfig) -> Path:
    dist = init_distributed(config.device)
    try:
        return Trainer(config, dist).run()
    finally:
        dist.close()
