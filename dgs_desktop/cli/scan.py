"""`dgs-desktop scan PATH... --checkpoint CKPT --csv OUT`: the headless scan."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from ..errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from ..scan.memory import DEFAULT_MEMORY_BUDGET_MIB, MIB
from ..stability import DEFAULT_ORDERS
from .shell import Command, positive_int, threshold

log = logging.getLogger(__name__)


def add_scan_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (recursive)")
    parser.add_argument("--checkpoint", "-c", help="checkpoint directory or hf:ORG/NAME[@REVISION]")
    parser.add_argument("--csv", "-o", required=True, metavar="OUT",
                        help="CSV file to write ('-': standard output). An existing DGS Desktop results file "
                             "is replaced once the new scan writes its first row; any other file is refused")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="auto: fp32 on every device, the same score on every machine; bf16: faster autocast "
                             "(scores move by ~1e-3). Default auto; recorded in the CSV")
    parser.add_argument("--select-on", default="auto", choices=("auto", "host", "device"),
                        help="where patches are chosen: worker threads (host) or batched on the model's "
                             "device (default: device on CUDA, host on CPU); both choose the same patches")
    parser.add_argument("--jpeg-decoder", default="auto", choices=("auto", "pillow", "torchvision"),
                        help="JPEG decoder of the device path (default: nvJPEG on CUDA, Pillow elsewhere)")
    parser.add_argument("--batch-size", type=positive_int, default=None,
                        help="images per forward pass (default 8 on CPU, 32 on CUDA); scores are "
                             "bit-identical across runs with the same device type and batch size")
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="threads for decoding and patch selection (default: CPU count, max 4)")
    parser.add_argument("--threshold", type=threshold, default=None,
                        help="fake if probability > threshold (default: the calibration's, else the checkpoint's, "
                             "usually 0.5)")
    parser.add_argument("--calibration", metavar="CAL.json",
                        help="a calibration made by `dgs-desktop calibrate` with this checkpoint: its threshold "
                             "is used and every row gets reference_fpr")
    parser.add_argument("--stability", type=positive_int, nargs="?", const=DEFAULT_ORDERS, default=0, metavar="K",
                        help=f"also score K other patch orders per image (default K {DEFAULT_ORDERS}); a spread "
                             "across the threshold makes the verdict inconclusive")
    parser.add_argument("--tta", type=positive_int, default=1, metavar="K",
                        help="report the mean P(fake) over K patch orders (default 1: the content-seeded order)")
    parser.add_argument("--resume", action="store_true", help="keep OUT's rows and scan only files not in it")
    parser.add_argument("--force", action="store_true",
                        help="with --resume: continue a CSV written with another checkpoint or threshold")
    parser.add_argument("--follow-links", action="store_true",
                        help="follow symbolic links that lead outside the given files and folders "
                             "(default: such a link gets an error row and is not read)")
    parser.add_argument("--memory-budget", type=positive_int, default=None, metavar="MIB",
                        help="memory that decoding may take at once across workers, in MiB (default "
                             f"{DEFAULT_MEMORY_BUDGET_MIB}); one larger image still runs, alone")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def warn(message: str) -> None:
    print(f"dgs-desktop: warning: {message}", file=sys.stderr)


def check_inputs(paths: list[str]) -> None:
    """Refuses a run none of whose paths exist; warns of each missing one (it gets an error row)."""
    missing = [p for p in paths if not Path(p).expanduser().exists() and not Path(p).is_symlink()]
    if len(missing) == len(paths):
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    for path in missing:
        warn(f"{path} does not exist (recorded as an error row)")


def open_model(args: argparse.Namespace, rank=None):
    """(checkpoint, device, precision) for `--checkpoint`, `--device`, `--precision`; bad values
    are one-line usage errors. The scan and calibrate share it, so both score alike."""
    from ..detector.device import resolve_device, resolve_precision
    from ..detector.manifest import NO_MODEL_HELP
    from ..detector.resolve import resolve_checkpoint
    from ..errors import CheckpointError, DeviceError

    if not args.checkpoint:
        raise UsageError(NO_MODEL_HELP)
    try:
        device = resolve_device(rank.device_spec(args.device) if rank else args.device)
        precision = resolve_precision(device, args.precision)
        checkpoint = resolve_checkpoint(args.checkpoint)
    except (DeviceError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    return checkpoint, device, precision


def load_model(checkpoint, device):
    from ..detector.scorer import load_scorer
    from ..errors import CheckpointError

    try:
        return load_scorer(checkpoint, device)
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None


def open_calibration(path: str, checkpoint_sha256: str, precision: str):
    """The calibration for this checkpoint (refused for another one), with its warnings on stderr."""
    from ..calibration import CalibrationError, load_calibration

    try:
        calibration = load_calibration(path)
        calibration.check_checkpoint(checkpoint_sha256)
    except CalibrationError as exc:
        raise UsageError(str(exc)) from None
    if calibration.warning():
        warn(calibration.warning())
    if calibration.precision and calibration.precision != precision:
        warn(f"the calibration was scored in {calibration.precision} and this scan runs in {precision}: "
             f"scores differ by ~1e-3, so the false-positive rate is approximate")
    return calibration


def run_scan(args: argparse.Namespace) -> int:
    from ..detector.device import describe_device
    from ..detector.manifest import model_warning
    from ..scan.csvio import RunInfo
    from ..scan.distributed import ScanRank
    from ..scan.engine import Scanner
    from ..scan.job import ScanJob

    if args.calibration and args.threshold is not None:
        raise UsageError("give --calibration or --threshold, not both (the calibration sets the threshold)")
    check_inputs(args.paths)
    rank = ScanRank.from_env()  # under torchrun: this process scores its share into a part file
    checkpoint, device, precision = open_model(args, rank)
    calibration = open_calibration(args.calibration, checkpoint.sha256, precision) if args.calibration else None
    threshold = (calibration.threshold if calibration is not None else
                 checkpoint.threshold if args.threshold is None else args.threshold)
    device_label = rank.label(describe_device(device)) if rank else describe_device(device)
    run = RunInfo(checkpoint=checkpoint.source, checkpoint_sha256=checkpoint.sha256,
                  device=device_label, threshold=threshold, precision=precision, calibration=calibration,
                  tta_orders=args.tta)
    job = ScanJob(args.paths, args.csv, run, resume=args.resume, force=args.force, follow_links=args.follow_links,
                  rank=rank)
    job.check()  # before the model loads: a run that fails its checks leaves the results file as it was
    detector = load_model(checkpoint, device)
    budget = None if args.memory_budget is None else args.memory_budget * MIB
    scanner = Scanner(detector, device, batch_size=args.batch_size, workers=args.workers, precision=precision,
                      select_on=args.select_on, jpeg_decoder=args.jpeg_decoder, memory_budget=budget,
                      stability_orders=args.stability, tta_orders=args.tta)
    files = job.open()  # opens the writer: nothing that can fail comes between this and job.run
    lead = rank is None or rank.rank == 0
    if model_warning(checkpoint.manifest) and lead:
        warn(model_warning(checkpoint.manifest))  # once the output is open: the rows will carry this model
    bar = None
    if not args.no_progress and lead:
        from tqdm import tqdm

        bar = tqdm(total=len(files), unit="img", file=sys.stderr, dynamic_ncols=True, desc="scanning")
    try:
        summary = job.run(scanner.scan(files), len(files), threshold,
                          on_result=None if bar is None else lambda _record: bar.update(1))
    finally:
        if bar is not None:
            bar.close()
    progress = summary.progress
    if summary.interrupted:
        kept = f"{args.csv} holds every finished row. Continue with --resume." if progress.done \
            else "no row was written."
        print(f"\ndgs-desktop: interrupted after {progress.done} of {len(files)} files; {kept}", file=sys.stderr)
        return EXIT_INTERRUPTED
    resumed = f", {summary.skipped} already in the CSV" if summary.skipped else ""
    if rank:
        resumed += f" (rank {rank.rank}/{rank.world_size})"
    counts = summary.counts
    print(f"Scanned {progress.done} files in {summary.elapsed_s:.1f} s ({progress.rate:.1f}/s): "
          f"{counts['fake']} fake, {counts['real']} real, {counts['inconclusive']} inconclusive, "
          f"{progress.failed} failed{resumed} -> {args.csv}",
          file=sys.stderr)
    return EXIT_OK


SCAN = Command("scan", "score images headless and write one CSV row per file", add_scan_arguments, run_scan)
