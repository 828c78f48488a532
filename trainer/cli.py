"""`dgs-desktop-train`: train a DGS-Net checkpoint, or `evaluate` one per subset.

    dgs-desktop-train --data TRAIN_ROOT --out CKPT_DIR [--val VAL_ROOT] [--arch ViT-L-14|test-tiny] ...
    dgs-desktop-train evaluate --checkpoint CKPT --data TEST_ROOT [--csv OUT] [--jpeg-quality Q] [--blur-sigma S]
    dgs-desktop-train publish CKPT --repo ORG/NAME [--revision BRANCH] [--private] [--eval CSV ...]
    torchrun --standalone --nproc_per_node=N -m trainer --data ... --out ...

User mistakes end with one line `dgs-desktop-train: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from dgs_desktop.cli.shell import Command, run_cli, with_default_command
from dgs_desktop.errors import UsageError

from . import config as train_config
from . import publish

PROG = "dgs-desktop-train"
log = logging.getLogger(__name__)


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    train_config.add_arguments(p, train_config.EvaluateConfig)


def run_train(args: argparse.Namespace) -> int:
    from .loop import train

    train(train_config.from_args(args))
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    import torch

    from dgs_desktop.detector.device import resolve_device
    from dgs_desktop.detector.resolve import resolve_checkpoint
    from dgs_desktop.detector.scorer import load_scorer

    from .data import format_unreadable
    from .distributed import init_distributed
    from .evaluate import evaluate_detector, write_metrics_csv, write_scores_csv
    from .facts import scoring_line
    from .metrics import format_log_lines
    from .sources import open_source

    config = train_config.from_args(args, train_config.EvaluateConfig)
    dataset = open_source(config.data, config.data_options(config.split), require_both=False)
    if dataset.skipped:
        log.warning("warning: %d dataset row(s) left out (no usable label):\n%s", len(dataset.skipped),
                    format_unreadable(dataset.skipped))
    dist = init_distributed(config.device)  # torchrun: each process scores a share, on its own GPU
    try:
        device = resolve_device(config.device)
        if dist.enabled and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
        checkpoint = resolve_checkpoint(config.checkpoint)
        detector = load_scorer(checkpoint, device)  # the scan's network: rows score as the same files scanned
        result = evaluate_detector(detector, dataset, device, threshold=config.threshold,
                                   batch_size=config.batch_size, workers=config.workers,
                                   jpeg_quality=config.jpeg_quality, blur_sigma=config.blur_sigma,
                                   progress=config.progress, precision=config.precision, dist=dist,
                                   decoding=config.decoding, blur_backend=config.blur_backend)
    finally:
        dist.close()
    if not dist.is_main:
        return 0  # the first process reports
    if result.errors:
        log.warning("warning: %d image(s) could not be scored and are left out:\n%s", len(result.errors),
                    format_unreadable(result.errors))
    if not result.rows:
        raise UsageError(f"no image under {config.data} could be scored")
    perturbation = []
    if config.blur_sigma:
        perturbation.append(f"Gaussian blur sigma={config.blur_sigma:g} ({config.blur_backend})")
    if config.jpeg_quality is not None:
        perturbation.append(f"JPEG quality={config.jpeg_quality}")
    print(f"checkpoint {checkpoint.short_id}  data {config.data}  threshold {config.threshold:g}"
          + (f"  perturbation: {', '.join(perturbation)}" if perturbation else ""))
    if result.note:
        print(f"note: {result.note}")
    print(format_log_lines(result.rows, result.mean, result.paper_table))
    print(scoring_line(result.facts or {}))
    if config.csv:
        write_metrics_csv(config.csv, result, {"jpeg_quality": config.jpeg_quality or "",
                                               "blur_sigma": config.blur_sigma or ""})
    if config.scores:
        write_scores_csv(config.scores, result)
    return 0


TRAIN = Command("train", "fine-tune a DGS-Net checkpoint, both stages (the default command)",
                train_config.add_arguments, run_train)
EVALUATE = Command("evaluate", "Acc, R.Acc, F.Acc and AP per generator, and their means",
                   add_evaluate_arguments, run_evaluate)
PUBLISH = Command("publish", "upload a checkpoint with a generated model card to the Hugging Face hub",
                  publish.add_publish_arguments, publish.run_publish)
COMMANDS = (TRAIN, EVALUATE, PUBLISH)
DESCRIPTION = "Train and evaluate DGS-Net checkpoints for DGS Desktop. Without a command: train."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv,
                   default=lambda args: with_default_command(args, COMMANDS, TRAIN.name))


if __name__ == "__main__":
    sys.exit(main())
