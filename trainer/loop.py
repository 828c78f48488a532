"""The two-stage DGS-Net training run (Sections 4-5): the orchestrator.

1. index (`prepare`): every image decoded once (sha256; unreadable files listed and skipped);
2. captions (`captions`): BLIP or --captions FILE, cached by content hash; t from the frozen
   text tower (`stage1.text_features`);
3. stage 1 (`stage1`): teacher features f^T of view 0, cached in the run folder, and the probe
   h_img^T trained on them, then frozen;
4. stage 2 (`stage2`): LoRA student + h_img + h_text with the surgered gradient (`step`);
5. the checkpoint with its provenance (`provenance`).

Rank 0 writes the run folder (`rundir`: state.pt, metrics.csv, loss.png, caches) and the
checkpoint. `--resume` reloads state.pt (`state`), saved every --save-every steps, at each
epoch end and on Ctrl-C; a seeded run resumed from it ends with the weights of an
uninterrupted one.
"""

from __future__ import annotations

import logging
import math
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .captions import resolve_captions
from .config import TrainConfig
from .distributed import Dist, init_distributed
from .errors import TrainError
from .networks import Networks
from .prepare import index_images, run_fingerprint
from .provenance import build_provenance, write_trained_checkpoint
from .rundir import FEATURES_FILE, METRICS_FILE, PLOT_FILE, STATE_FILE, MetricsLog, prepare_run_dir, run_dir_for
from .runtime import Runtime
from .sources import SampleSet, open_source
from .stage1 import TeacherFeatureStore, run_stage1, text_features
from .stage2 import run_stage2
from .state import Counters, Position, collect_state, read_state, restore_networks, write_state
from .step import StepStats

log = logging.getLogger(__name__)


class TrainingRun:
    def __init__(self, config: TrainConfig, dist: Dist | None = None):
        config.validate()
        self.config = config
        self.runtime = Runtime.create(config, dist or Dist())
        world = self.runtime.dist.world
        if config.batch_size % (world * config.accum):
            raise TrainError(f"--batch-size {config.batch_size} must be divisible by processes x --accum "
                             f"({world} x {config.accum})")
        self.run_dir = run_dir_for(config)
        self.metrics = MetricsLog(self.run_dir / METRICS_FILE, self.runtime.dist.is_main)
        self.counters = Counters()
        self.interrupted = False  # set by the first Ctrl-C
        self.started = time.perf_counter()
        self.probe_steps = 0
        self.val_summary: dict | None = None  # the last --val evaluation
        self.validated_step = -1

    def info(self, message: str, *args) -> None:
        if self.runtime.dist.is_main:
            log.info(message, *args)

    def run(self) -> Path:
        cfg, runtime = self.config, self.runtime
        dataset = open_source(cfg.data, cfg.data_options(cfg.split))
        val = open_source(cfg.val, cfg.data_options(cfg.val_split), require_both=False) if cfg.val else None
        prepare_run_dir(cfg, self.run_dir, runtime.dist)
        self.info("training data %s: %d images in %d subset(s); device %s, %d process(es)", dataset.root,
                  len(dataset.samples), len(dataset.counts()), runtime.device, runtime.dist.world)
        dataset, shas = index_images(dataset, cfg.workers, runtime)
        fingerprint = run_fingerprint(cfg, dataset, shas)
        networks = Networks.build(cfg, runtime.device)
        resume = self.resume(networks, fingerprint) if cfg.resume else None

        from dgs_desktop.detector.backbone import tokenizer_for

        captions, caption_info = resolve_captions(
            dataset.samples, shas, captioner=cfg.captioner, captions_file=cfg.captions, device=runtime.device,
            batch_size=cfg.batch_size, cache_dir=Path(cfg.cache_dir) if cfg.cache_dir else None,
            progress=runtime.progress, dist=runtime.dist if runtime.dist.enabled else None)
        text = text_features(networks, tokenizer_for(cfg.arch), captions, runtime)
        features = self.stage1(networks, dataset, fingerprint, resume, shas)

        def save(position: Position, optimizer=None, scaler=None) -> None:
            self.save_state(networks, fingerprint, position, optimizer, scaler)

        if resume is None:
            torch.manual_seed(cfg.seed * 1009 + 17 + runtime.dist.rank)  # per-rank LoRA-dropout streams
            save(Position("probe"))
        with self.ctrl_c():
            try:
                steps = run_stage2(networks, dataset, text, features, cfg, runtime, self.metrics, self.counters,
                                   resume=resume, started=self.started, save=save,
                                   stop_requested=lambda: self.interrupted,
                                   after_epoch=(lambda epoch, step: self.validate(networks, val, epoch, step))
                                   if val is not None else None)
            except KeyboardInterrupt:
                self.info("interrupted: state saved in %s; continue with the same command and --resume", self.run_dir)
                raise
        return self.finish(networks, dataset, val, caption_info, steps)

    # ------------------------------------------------------------------ pieces
    def resume(self, networks: Networks, fingerprint: str) -> dict:
        state = read_state(self.run_dir / STATE_FILE, fingerprint=fingerprint, world=self.runtime.dist.world)
        restore_networks(networks, state, self.runtime.device)
        self.probe_steps = int(state.get("probe_steps", 0))
        if state["stage"] == "dgs":
            self.counters = Counters(**state["counters"])
        done = int(state["global_step"]) if state["stage"] == "dgs" else 0
        self.metrics.load(lambda row: row["stage"] == "probe" or (row["stage"] == "dgs" and int(row["step"]) <= done))
        self.info("resuming from %s (stage 2 step %d)", self.run_dir / STATE_FILE, done)
        return state

    def stage1(self, networks: Networks, dataset: SampleSet, fingerprint: str,
               resume: dict | None, shas: list[str]) -> dict[int, torch.Tensor]:
        """The stage-1 f^T that stage 2 reuses ({} without prior alignment: stage 1 is skipped)
        and, on a fresh run, the trained probe h_img^T."""
        if not self.config.surgery_config().needs_teacher:
            if resume is None:
                self.info("prior alignment is off: stage 1 (teacher probe) skipped")
            return {}
        features, steps, loaded = run_stage1(networks, dataset, self.config, self.runtime, self.metrics,
                                             cache_path=self.run_dir / FEATURES_FILE, fingerprint=fingerprint,
                                             train=resume is None, started=self.started,
                                             store=TeacherFeatureStore.for_run(self.config, self.runtime, shas))
        if resume is None:
            self.probe_steps = steps
        self.counters.feature_cache_loaded = self.counters.feature_cache_loaded or loaded
        return features

    def validate(self, networks: Networks, val: SampleSet, epoch: int, step: int) -> None:
        """Acc and AP on --val after an epoch (rank 0 evaluates, the others wait)."""
        if self.runtime.dist.is_main:
            from .evaluate import evaluate_detector, summary

            result = evaluate_detector(networks.detector, val, self.runtime.device, batch_size=self.config.batch_size,
                                       workers=max(1, self.config.workers), progress=self.config.progress)
            self.val_summary = summary(result)
            acc, ap = result.mean.get("acc", math.nan), result.mean.get("ap", math.nan)
            self.metrics.add(stage="val", epoch=epoch, step=step, val_acc=acc, val_ap=ap,
                             elapsed_s=time.perf_counter() - self.started)
            self.metrics.plot(self.run_dir / PLOT_FILE)
            log.info("validation after epoch %d (step %d): acc %.4f, ap %.4f", epoch + 1, step, acc, ap)
        self.validated_step = step
        self.runtime.dist.barrier()

    def save_state(self, networks: Networks, fingerprint: str, position: Position, optimizer=None,
                   scaler=None) -> None:
        state = collect_state(networks, self.runtime, position, fingerprint=fingerprint,
                              probe_steps=self.probe_steps, counters=self.counters, optimizer=optimizer,
                              scaler=scaler, elapsed_s=time.perf_counter() - self.started)  # collective
        if self.runtime.dist.is_main:
            write_state(state, self.run_dir / STATE_FILE)
            self.metrics.plot(self.run_dir / PLOT_FILE)
        self.runtime.dist.barrier()

    @contextmanager
    def ctrl_c(self):
        """First Ctrl-C: finish the step, save, stop. A second one aborts at once."""
        def handler(signum, frame):
            if self.interrupted:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                raise KeyboardInterrupt
            self.interrupted = True
            log.warning("Ctrl-C: saving after this step (press again to abort now)")

        try:
            previous = signal.signal(signal.SIGINT, handler)
        except ValueError:  # not the main thread: no handler
            previous = None
        try:
            yield
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def finish(self, networks: Networks, dataset: SampleSet, val: SampleSet | None, caption_info: dict,
               steps: int) -> Path:
        cfg, runtime = self.config, self.runtime
        final_metrics: dict = {}
        last = self.metrics.last("dgs")
        if last:
            final_metrics["train_last_step"] = {k: float(last[k]) for k in StepStats.FIELDS if last[k] != ""}
        if val is not None and self.validated_step != steps:  # stopped inside an epoch (--max-steps)
            self.validate(networks, val, cfg.epochs - 1, steps)
        if self.val_summary is not None:
            final_metrics["val"] = self.val_summary
        out = Path(cfg.out)
        if runtime.dist.is_main:
            provenance = build_provenance(cfg, runtime, dataset, steps=steps, probe_steps=self.probe_steps,
                                          counters=self.counters, captions=caption_info, final_metrics=final_metrics)
            write_trained_checkpoint(out, networks, cfg, provenance)
            self.metrics.plot(self.run_dir / PLOT_FILE)
            log.info("checkpoint written to %s (run folder %s)", out, self.run_dir)
        runtime.dist.barrier()
        return out


def train(config: TrainConfig) -> Path:
    dist = init_distributed(config.device)
    try:
        return TrainingRun(config, dist).run()
    finally:
        dist.close()
