"""What a checkpoint records about how it was trained (manifest `provenance`), and writing it."""

from __future__ import annotations

from pathlib import Path

from dgs_desktop.detector.backbone import TEST_TINY
from dgs_desktop.verdict import DEFAULT_THRESHOLD

from .config import TrainConfig
from .facts import library_versions
from .networks import Networks
from .runtime import Runtime
from .sources import SampleSet
from .state import Counters

AUGMENTATION = ("seeded patch shuffle + horizontal flip p=0.5 of the mosaic, a fresh view per epoch; "
                "stage-2 epoch e shows the view of probe epoch e")


def base_weights_id(config: TrainConfig) -> str:
    return "random-init" if config.arch == TEST_TINY or not config.pretrained else config.pretrained


def build_provenance(config: TrainConfig, runtime: Runtime, dataset: SampleSet, *, steps: int, probe_steps: int,
                     counters: Counters, captions: dict, final_metrics: dict) -> dict:
    return {
        "trainer": "dgs-desktop-train",
        "data_root": str(dataset.root.resolve()),
        "data": dataset.provenance,
        "counts": dataset.counts("category"),
        "images": len(dataset.samples),
        "unreadable_skipped": len(dataset.skipped),
        "hyperparameters": {
            "optimizer": "Adam", "lr": config.lr, "betas": [0.9, 0.999], "batch_size": config.batch_size,
            "accumulation": config.accum, "epochs": config.epochs, "max_steps": config.max_steps,
            "steps": steps, "probe_epochs": config.probe_epochs, "probe_lr": config.probe_lr or config.lr,
            "probe_steps": probe_steps, "amp": runtime.precision, "augmentation": AUGMENTATION},
        "surgery": config.surgery_config().to_manifest(),
        "seed": config.seed,
        "processes": runtime.dist.world,
        "captions": captions,
        "teacher_features": {
            "stage1_cache_used_in_stage2": counters.teacher_cached_images > 0,
            "cached_images": counters.teacher_cached_images,
            "teacher_forward_images": counters.teacher_forward_images,
            "loaded_from_run_folder": counters.feature_cache_loaded},
        "versions": library_versions(),
        "final_metrics": final_metrics,
    }


def write_trained_checkpoint(out: Path, networks: Networks, config: TrainConfig, provenance: dict) -> None:
    """The checkpoint folder the app loads: LoRA, h_img, and (for the record) h_text and h_img^T."""
    from dgs_desktop.detector.checkpoint import save_checkpoint

    bundle = config.bundle_base or (config.arch != TEST_TINY and not config.pretrained)  # random base: keep it
    save_checkpoint(out, networks.detector.to("cpu"), architecture=config.arch, base_weights=base_weights_id(config),
                    bundle_base=bundle, threshold=DEFAULT_THRESHOLD, provenance=provenance,
                    extra_heads={"h_text": networks.h_text.cpu(), "h_img_T": networks.h_teacher.cpu()})
