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

from dgs_desktop.cli.shell import Command, non_negative_float, positive_int, run_cli, threshold, with_default_command
from dgs_desktop.errors import UsageError
from dgs_desktop.scan.decode import ANALYST, DECODINGS
from dgs_desktop.verdict import DEFAULT_THRESHOLD

from . import config as train_config
from . import publish
from .config import default_workers
from .evaluate import BLUR_BACKENDS

PROG = "dgs-desktop-train"
log = logging.getLogger(__name__)


def _quality(text: str) -> int:
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"JPEG quality must be 1-100, got {value}")
    return value


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or hf:ORG/NAME[@REV]")
    p.add_argument("--data", required=True,
                   help="test data: a folder tree (one subset per top-level folder, pooling the 0_real/ and "
                        "1_fake/, or nature/ and ai/, folders beneath it), a folder of parquet shards, or "
                        "hf-dataset:ORG/NAME[@REVISION] (one subset per generator)")
    p.add_argument("--split", help="split of a parquet or hf-dataset: source (default: its only split)")
    p.add_argument("--classes", help="keep only these categories, comma-separated")
    p.add_argument("--image-column", help="dataset column with the images (default: the Image feature)")
    p.add_argument("--label-column", help="dataset column with real/fake labels (default: the ClassLabel "
                                          "named real/fake)")
    p.add_argument("--subset-column", help="dataset column that makes the table's rows (default: generator)")
    p.add_argument("--category-column", help="dataset column --classes selects on")
    p.add_argument("--csv", help="write the table here: one row per subset, then mean and paper_table")
    p.add_argument("--scores", help="write one row per image (path, subset, category, label, probability) here")
    p.add_argument("--jpeg-quality", type=_quality, help="re-encode each image as JPEG at this quality first")
    p.add_argument("--blur-sigma", type=non_negative_float, help="Gaussian-blur each image with this sigma first")
    p.add_argument("--blur-backend", default="pillow", choices=BLUR_BACKENDS,
                   help="pillow (default): Pillow's GaussianBlur; scipy: the authors' scipy gaussian_filter "
                        "(pip install 'dgs-desktop[paper]'; Pillow is within ~1 gray level of it)")
    p.add_argument("--decoding", default=ANALYST, choices=DECODINGS,
                   help="analyst (default, as the app scans): EXIF orientation applied, 16-bit images scaled; "
                        "authors: their Image.open().convert('RGB'), no rotation, 16-bit values saturate "
                        "(to reproduce the paper)")
    p.add_argument("--threshold", type=threshold, default=DEFAULT_THRESHOLD,
                   help=f"fake when P(fake) > threshold (default {DEFAULT_THRESHOLD})")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto: fp32 on every device, as the authors evaluated (bf16: faster, scores move ~1e-3)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="images per forward pass (default: the scan's, 8 on CPU and 32 on CUDA, so scores match it)")
    p.add_argument("--workers", type=positive_int, default=default_workers())
    p.add_argument("--no-progress", action="store_true")


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
    from .sources import DataOptions, load_dataset, parse_classes

    options = DataOptions(classes=parse_classes(args.classes), split=args.split, image_column=args.image_column,
                          label_column=args.label_column, subset_column=args.subset_column,
                          category_column=args.category_column)
    dataset = load_dataset(args.data, options, require_both=False)
    if dataset.unreadable:
        log.warning("warning: %d dataset row(s) left out (no usable label):\n%s", len(dataset.unreadable),
                    format_unreadable(dataset.unreadable))
    dist = init_distributed(args.device)  # torchrun: each process scores a share, on its own GPU
    try:
        device = resolve_device(args.device)
        if dist.enabled and device.type == "cuda":
            device = torch.device("cuda", dist.local_rank)
        checkpoint = resolve_checkpoint(args.checkpoint)
        detector = load_scorer(checkpoint, device)  # the scan's network: rows score as the same files scanned
        result = evaluate_detector(detector, dataset, device, threshold=args.threshold, batch_size=args.batch_size,
                                   workers=args.workers, jpeg_quality=args.jpeg_quality, blur_sigma=args.blur_sigma,
                                   progress=not args.no_progress, precision=args.precision, dist=dist,
                                   decoding=args.decoding, blur_backend=args.blur_backend)
    finally:
        dist.close()
    if not dist.is_main:
        return 0  # the first process reports
    if result.errors:
        log.warning("warning: %d image(s) could not be scored and are left out:\n%s", len(result.errors),
                    format_unreadable(result.errors))
    if not result.rows:
        raise UsageError(f"no image under {args.data} could be scored")
    perturbation = []
    if args.blur_sigma:
        perturbation.append(f"Gaussian blur sigma={args.blur_sigma:g} ({args.blur_backend})")
    if args.jpeg_quality is not None:
        perturbation.append(f"JPEG quality={args.jpeg_quality}")
    print(f"checkpoint {checkpoint.short_id}  data {args.data}  threshold {args.threshold:g}"
          + (f"  perturbation: {', '.join(perturbation)}" if perturbation else ""))
    if result.note:
        print(f"note: {result.note}")
    print(format_log_lines(result.rows, result.mean, result.paper_table))
    print(scoring_line(result.facts or {}))
    if args.csv:
        write_metrics_csv(args.csv, result, {"jpeg_quality": args.jpeg_quality or "",
                                             "blur_sigma": args.blur_sigma or ""})
    if args.scores:
        write_scores_csv(args.scores, result)
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
