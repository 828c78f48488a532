"""`dgs-desktop import-weights FILE OUT_DIR`: the authors' `.pth` as a checkpoint folder."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..errors import EXIT_OK, UsageError
from .shell import Command

log = logging.getLogger(__name__)


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the authors' model_epoch_step2.pth")
    parser.add_argument("out_dir", metavar="OUT_DIR", help="checkpoint directory to create")


def run_import(args: argparse.Namespace) -> int:
    from ..detector.authors import import_authors_weights

    source = Path(args.file)
    if not source.is_file():
        raise UsageError(f"{source} is not a file")
    out = import_authors_weights(source, Path(args.out_dir))
    print(f"Imported {source} -> {out}. Scan with: dgs-desktop scan PATH --checkpoint {out} --csv results.csv")
    return EXIT_OK


IMPORT_WEIGHTS = Command(
    "import-weights", "convert the authors' released .pth into a checkpoint folder", add_import_arguments,
    run_import, description="Convert the authors' released .pth into a checkpoint directory "
                            "(read with torch.load(weights_only=True); never unpickled).")
