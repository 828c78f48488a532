"""`dgs-desktop` (the window), `dgs-desktop scan …` (headless) and `dgs-desktop import-weights`.

Heavy libraries (torch, open_clip, peft) are imported only inside the commands that need
them, so `--help` and argument errors are instant.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import __version__

EXIT_OK, EXIT_USAGE, EXIT_INTERRUPTED = 0, 2, 130


class UsageError(Exception):
    """Bad arguments or an unusable checkpoint/device: one line, exit code 2."""


def _fail(message: str) -> int:
    print(f"dgs-desktop: error: {message}", file=sys.stderr)
    return EXIT_USAGE


# ------------------------------------------------------------------------------------ scan
def scan_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgs-desktop scan",
                                     description="Score images headless and write one CSV row per file.")
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders (recursive)")
    parser.add_argument("--checkpoint", "-c", help="checkpoint directory or hf:ORG/NAME[@REVISION]")
    parser.add_argument("--csv", "-o", required=True, metavar="OUT", help="CSV file to write")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per forward pass (default 8 on CPU, 32 on CUDA); scores are "
                             "bit-identical across runs with the same device type and batch size")
    parser.add_argument("--workers", type=int, default=None,
                        help="threads for decoding and patch selection (default: CPU count, max 4)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="fake if probability > threshold (default: the checkpoint's, usually 0.5)")
    parser.add_argument("--resume", action="store_true", help="keep OUT's rows and scan only files not in it")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return parser


def run_scan(args: argparse.Namespace) -> int:
    from .detector.checkpoint import NO_MODEL_HELP, CheckpointError, load_detector, resolve_checkpoint
    from .detector.device import DeviceError, describe_device, resolve_device
    from .scan.csvio import CsvError, CsvResultWriter, RunInfo
    from .scan.discover import expand_paths
    from .scan.engine import Scanner, ScanProgress

    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    if args.workers is not None and args.workers < 1:
        raise UsageError("--workers must be at least 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0:
        raise UsageError("--threshold must be between 0 and 1")
    if not args.checkpoint:
        raise UsageError(NO_MODEL_HELP)
    missing = [p for p in args.paths if not Path(p).expanduser().exists() and not Path(p).is_symlink()]
    if len(missing) == len(args.paths):
        raise UsageError(f"no such file or folder: {', '.join(missing)}")
    for path in missing:
        print(f"dgs-desktop: warning: {path} does not exist (recorded as an error row)", file=sys.stderr)
    try:
        device = resolve_device(args.device)
        checkpoint = resolve_checkpoint(args.checkpoint)
    except (DeviceError, CheckpointError) as exc:
        raise UsageError(str(exc)) from None
    threshold = checkpoint.threshold if args.threshold is None else args.threshold
    run = RunInfo(checkpoint=checkpoint.source, checkpoint_sha256=checkpoint.sha256,
                  device=describe_device(device), threshold=threshold)
    try:
        writer = CsvResultWriter(args.csv, run, resume=args.resume)
    except CsvError as exc:
        raise UsageError(str(exc)) from None
    with writer:
        try:
            detector = load_detector(checkpoint, device)
        except CheckpointError as exc:
            raise UsageError(str(exc)) from None
        files = [p for p in expand_paths(args.paths) if str(p) not in writer.done_paths]
        skipped = len(writer.done_paths)
        scanner = Scanner(detector, device, batch_size=args.batch_size, workers=args.workers)
        progress = ScanProgress(total=len(files))
        counts = {"fake": 0, "real": 0}
        bar = None
        if not args.no_progress:
            from tqdm import tqdm

            bar = tqdm(total=len(files), unit="img", file=sys.stderr, dynamic_ncols=True,
                       desc="scanning")
        try:
            for result in scanner.scan(files):
                writer.write(result)
                progress.update(result)
                verdict = result.verdict(threshold)
                if verdict:
                    counts[verdict] += 1
                if bar is not None:
                    bar.update(1)
        except CsvError as exc:  # disk full / output removed mid-scan: finished rows are kept
            raise UsageError(str(exc)) from None
        except KeyboardInterrupt:
            if bar is not None:
                bar.close()
            print(f"\ndgs-desktop: interrupted after {progress.done} of {len(files)} files; "
                  f"{args.csv} holds every finished row. Continue with --resume.", file=sys.stderr)
            return EXIT_INTERRUPTED
        finally:
            if bar is not None:
                bar.close()
    elapsed = time.perf_counter() - progress.started
    resumed = f", {skipped} already in the CSV" if skipped else ""
    print(f"Scanned {progress.done} files in {elapsed:.1f} s ({progress.rate:.1f}/s): "
          f"{counts['fake']} fake, {counts['real']} real, {progress.failed} failed{resumed} -> {args.csv}",
          file=sys.stderr)
    return EXIT_OK


# ---------------------------------------------------------------------------- import-weights
def import_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dgs-desktop import-weights",
                                     description="Convert the authors' released .pth into a checkpoint directory "
                                                 "(read with torch.load(weights_only=True); never unpickled).")
    parser.add_argument("file", metavar="FILE", help="the authors' model_epoch_step2.pth")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="checkpoint directory to create")
    return parser


def run_import(args: argparse.Namespace) -> int:
    from .detector.authors import import_authors_weights
    from .detector.checkpoint import CheckpointError

    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"{source} is not a file")
    try:
        out = import_authors_weights(source, Path(args.out_dir))
    except CheckpointError as exc:
        raise UsageError(str(exc)) from None
    print(f"Imported {source} -> {out}. Scan with: dgs-desktop scan PATH --checkpoint {out} --csv results.csv")
    return EXIT_OK


# -------------------------------------------------------------------------------------- gui
def gui_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dgs-desktop",
        description="DGS Desktop: is this image AI-generated? Opens the window; "
                    "`dgs-desktop scan --help` and `dgs-desktop import-weights --help` for the headless commands.")
    parser.add_argument("paths", nargs="*", metavar="PATH", help="images or folders to add and scan")
    parser.add_argument("--checkpoint", "-c", help="checkpoint directory or hf:ORG/NAME[@REVISION]")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--version", action="version", version=f"dgs-desktop {__version__}")
    return parser


def _has_display() -> bool:
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def run_gui(args: argparse.Namespace) -> int:
    if not _has_display():  # Qt would abort the process with a wall of plugin errors
        raise UsageError("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); "
                         "use `dgs-desktop scan PATH --checkpoint CKPT --csv OUT` for headless work, "
                         "or start the window under xvfb-run")
    try:
        from .gui.app import run_app
    except ImportError as exc:
        raise UsageError(f"the window cannot start ({exc}); the headless `dgs-desktop scan` still works") from None
    return run_app(paths=args.paths, checkpoint=args.checkpoint, device=args.device)


COMMANDS = {"scan": (scan_parser, run_scan), "import-weights": (import_parser, run_import)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    make_parser, run = COMMANDS.get(argv[0], (None, None)) if argv else (None, None)
    if make_parser is None:
        make_parser, run = gui_parser, run_gui
    else:
        argv = argv[1:]
    args = make_parser().parse_args(argv)
    try:
        return run(args)
    except UsageError as exc:
        return _fail(str(exc))


if __name__ == "__main__":
    sys.exit(main())
