"""`dgs-desktop-train`: train a DGS-Net checkpoint, or `evaluate` one per subset.

    dgs-desktop-train --data TRAIN_ROOT --out CKPT_DIR [--val VAL_ROOT] [--arch ViT-L-14|test-tiny] ...
    dgs-desktop-train evaluate --checkpoint CKPT --data TEST_ROOT [--csv OUT] [--jpeg-quality Q] [--blur-sigma S]
    torchrun --standalone --nproc_per_node=N -m trainer --data ... --out ...

User mistakes end with one line `dgs-desktop-train: error: ...` and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from dgs_desktop.cli.shell import Command, run_cli, with_default_command
from dgs_desktop.errors import UsageError

PROG = "dgs-desktop-train"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _quality(text: str) -> int:
    value = _positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"JPEG quality must be 1-100, got {value}")
    return value


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="training root: a tree with 0_real/ and 1_fake/ leaves")
    p.add_argument("--out", required=True, help="checkpoint folder to write (the app loads it)")
    p.add_argument("--val", help="validation root (same layout), evaluated at the end")
    p.add_argument("--arch", default="ViT-L-14", help="backbone: ViT-L-14 (paper), test-tiny, or an open_clip name")
    p.add_argument("--pretrained", default="openai", help="open_clip weights tag ('none' for random weights)")
    p.add_argument("--captioner", default="Salesforce/blip-image-captioning-base",
                   help="BLIP model for captions, or test-tiny")
    p.add_argument("--captions", help="JSON file of precomputed captions (image path -> caption), authors' format")
    p.add_argument("--max-steps", type=_positive_int, help="stop each stage after N optimizer steps (smoke tests)")
    p.add_argument("--epochs", type=_positive_int, default=1, help="stage-2 epochs (paper: 1)")
    p.add_argument("--probe-epochs", type=_positive_int, default=3, help="stage-1 probe epochs (authors: 3)")
    p.add_argument("--batch-size", type=_positive_int, default=32, help="global batch size (paper: 32)")
    p.add_argument("--accum", type=_positive_int, default=1, help="micro-batches per step (gradient accumulation)")
    p.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--probe-lr", type=float, help="stage-1 learning rate (default: --lr)")
    p.add_argument("--lam", type=_non_negative_float, default=0.2, help="prior-alignment weight lambda (paper: 0.2)")
    p.add_argument("--surgery", choices=("paper", "reference"), default="paper",
                   help="paper: eq. 16; reference: the authors' hook (projects the whole gradient, lambda/B)")
    p.add_argument("--no-orthogonal-suppression", action="store_true", help="ablation: keep g_task unprojected")
    p.add_argument("--no-prior-alignment", action="store_true", help="ablation: drop the lambda term")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "off"), default="auto",
                   help="mixed precision (auto: bf16 on CUDA, fp32 elsewhere; fp16 uses a GradScaler)")
    p.add_argument("--resume", action="store_true", help="continue from the last saved state of this --out")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1), help="data-loading processes")
    p.add_argument("--save-every", type=_positive_int, default=200, help="save resume state every N steps")
    p.add_argument("--run-dir", help="run folder for state, metrics.csv, loss.png (default: OUT.run)")
    p.add_argument("--cache-dir", help="caption cache folder (default: the user cache, or $DGS_DESKTOP_CACHE)")
    p.add_argument("--no-feature-cache", action="store_true",
                   help="run the teacher forward in stage 2 instead of reusing the stage-1 features")
    p.add_argument("--bundle-base", action="store_true", help="store the base vision weights in the checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_evaluate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="checkpoint folder or hf:ORG/NAME[@REV]")
    p.add_argument("--data", required=True, help="test root: a tree with 0_real/ and 1_fake/ leaves")
    p.add_argument("--csv", help="write the per-subset table here")
    p.add_argument("--scores", help="write one row per image (path, subset, label, probability) here")
    p.add_argument("--jpeg-quality", type=_quality, help="re-encode each image as JPEG at this quality first")
    p.add_argument("--blur-sigma", type=_non_negative_float, help="Gaussian-blur each image with this sigma first")
    p.add_argument("--threshold", type=float, default=0.5, help="fake when P(fake) > threshold (default 0.5)")
    p.add_argument("--device", default="auto")
    p.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                   help="auto: bf16 autocast on CUDA and on CPUs with AMX/AVX512-BF16, else fp32")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--workers", type=_positive_int, default=min(4, os.cpu_count() or 1))
    p.add_argument("--no-progress", action="store_true")


def run_train(args: argparse.Namespace) -> int:
    from .loop import TrainConfig, train

    pretrained = None if str(args.pretrained).lower() in ("none", "random", "") else args.pretrained
    if args.lr <= 0:
        raise UsageError("--lr must be positive")
    config = TrainConfig(
        data=args.data, out=args.out, val=args.val, arch=args.arch, pretrained=pretrained,
        captioner=args.captioner, captions=args.captions, max_steps=args.max_steps, epochs=args.epochs,
        probe_epochs=args.probe_epochs, batch_size=args.batch_size, accum=args.accum, lr=args.lr,
        probe_lr=args.probe_lr, lam=args.lam, surgery=args.surgery,
        orthogonal_suppression=not args.no_orthogonal_suppression, prior_alignment=not args.no_prior_alignment,
        seed=args.seed, device=args.device, amp=args.amp, resume=args.resume, workers=max(0, args.workers),
        save_every=args.save_every, run_dir=args.run_dir, cache_dir=args.cache_dir,
        feature_cache=not args.no_feature_cache, bundle_base=args.bundle_base, progress=not args.no_progress)
    train(config)
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from dgs_desktop.detector.checkpoint import load_detector, resolve_checkpoint
    from dgs_desktop.detector.device import resolve_device

    from .data import discover, format_unreadable
    from .evaluate import evaluate_detector, write_metrics_csv, write_scores_csv
    from .metrics import format_table

    dataset = discover(args.data, require_both=False)
    device = resolve_device(args.device)
    checkpoint = resolve_checkpoint(args.checkpoint)
    detector = load_detector(checkpoint, device)
    result = evaluate_detector(detector, dataset, device, threshold=args.threshold, batch_size=args.batch_size,
                               workers=args.workers, jpeg_quality=args.jpeg_quality, blur_sigma=args.blur_sigma,
                               progress=not args.no_progress, precision=args.precision)
    if result.errors:
        print(f"warning: {len(result.errors)} image(s) could not be scored and are left out:\n"
              + format_unreadable(result.errors), file=sys.stderr)
    if not result.rows:
        raise UsageError(f"no image under {args.data} could be scored")
    perturbation = []
    if args.blur_sigma:
        perturbation.append(f"Gaussian blur sigma={args.blur_sigma:g}")
    if args.jpeg_quality is not None:
        perturbation.append(f"JPEG quality={args.jpeg_quality}")
    print(f"checkpoint {checkpoint.short_id}  data {dataset.root}  threshold {args.threshold:g}"
          + (f"  perturbation: {', '.join(perturbation)}" if perturbation else ""))
    print(format_table(result.rows, result.mean))
    if args.csv:
        write_metrics_csv(args.csv, result, {"jpeg_quality": args.jpeg_quality or "",
                                             "blur_sigma": args.blur_sigma or ""})
    if args.scores:
        write_scores_csv(args.scores, result)
    return 0


TRAIN = Command("train", "fine-tune a DGS-Net checkpoint, both stages (the default command)",
                add_train_arguments, run_train)
EVALUATE = Command("evaluate", "Acc, R.Acc, F.Acc and AP per generator, and their means",
                   add_evaluate_arguments, run_evaluate)
COMMANDS = (TRAIN, EVALUATE)
DESCRIPTION = "Train and evaluate DGS-Net checkpoints for DGS Desktop. Without a command: train."


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return run_cli(PROG, DESCRIPTION, COMMANDS, argv,
                   default=lambda args: with_default_command(args, COMMANDS, TRAIN.name))


if __name__ == "__main__":
    sys.exit(main())
