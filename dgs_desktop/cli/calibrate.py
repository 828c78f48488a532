"""`dgs-desktop calibrate REAL... --checkpoint CKPT [--fake FAKE...] --out CAL.json`: a threshold
with a known false-positive rate on the analyst's own real photos (dgs_desktop.calibration)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

from ..errors import EXIT_INTERRUPTED, EXIT_OK, UsageError
from .shell import Command, probability


def add_calibrate_arguments(parser: argparse.ArgumentParser) -> None:
    from ..calibration import DEFAULT_TARGET_FPR

    parser.add_argument("real", nargs="+", metavar="REAL", help="files or folders of real images (recursive)")
    parser.add_argument("--checkpoint", "-c", help="checkpoint directory or hf:ORG/NAME[@REVISION]")
    parser.add_argument("--fake", nargs="+", default=[], metavar="FAKE",
                        help="files or folders of known AI-generated images: reports the detection rate at T")
    parser.add_argument("--target-fpr", type=probability, default=DEFAULT_TARGET_FPR, metavar="RATE",
                        help=f"largest false-positive rate allowed on REAL (default {DEFAULT_TARGET_FPR})")
    parser.add_argument("--out", "-o", required=True, metavar="CAL.json", help="calibration file to write")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"),
                        help="as for scan (default auto: fp32); scan in the same precision")
    parser.add_argument("--batch-size", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--follow-links", action="store_true", help="follow links out of the given folders")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")


def _score_all(scanner, paths: list, label: str, show_progress: bool) -> tuple[list, list]:
    """score_references with a progress bar on stderr."""
    from tqdm import tqdm

    from ..calibration import score_references

    with tqdm(total=len(paths), unit="img", file=sys.stderr, desc=label, disable=not show_progress) as bar:
        return score_references(scanner, paths, report=lambda done, total: bar.update(done - bar.n))


def run_calibrate(args: argparse.Namespace) -> int:
    from ..calibration import CalibrationError, build_calibration, write_calibration
    from ..scan.discover import expand_paths
    from ..scan.engine import Scanner
    from .scan import check_inputs, load_model, open_model, warn

    check_inputs(args.real + args.fake)
    checkpoint, device, precision = open_model(args)
    detector = load_model(checkpoint, device)
    scanner = Scanner(detector, device, batch_size=args.batch_size, precision=precision)
    show = not args.no_progress
    try:
        real, real_failed = _score_all(scanner, list(expand_paths(args.real, follow_links=args.follow_links)),
                                       "real", show)
        fake: list[tuple[str, str, float]] = []  # (path, sha256, P(fake)), as score_references gives them
        if args.fake:
            fake, _ = _score_all(scanner, list(expand_paths(args.fake, follow_links=args.follow_links)), "fake", show)
    except KeyboardInterrupt:
        print("\ndgs-desktop: interrupted; no calibration was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    for record in real_failed[:5]:
        warn(f"{record.path}: {record.error} (not part of the calibration)")
    if len(real_failed) > 5:
        warn(f"... and {len(real_failed) - 5} more real images could not be scored")
    try:
        calibration = build_calibration(
            real, checkpoint.sha256, args.target_fpr, [p for _, _, p in fake], precision=precision,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            extra={"checkpoint": checkpoint.source, "unscored_real": len(real_failed)})
        calibration = write_calibration(args.out, calibration)
    except CalibrationError as exc:
        raise UsageError(str(exc)) from None
    if calibration.warning():
        warn(calibration.warning())
    print(f"Calibrated: {calibration.summary()} -> {args.out} (sha256 {calibration.sha256[:12]}…)", file=sys.stderr)
    return EXIT_OK


CALIBRATE = Command("calibrate", "pick a threshold with a known false-positive rate on your own real images",
                    add_calibrate_arguments, run_calibrate)
