"""`dgs-desktop report CSV_OR_CASE --html OUT.html [--pdf OUT.pdf]`: the analyst's report."""

from __future__ import annotations

import argparse
import sys

from ..errors import EXIT_OK, UsageError
from .shell import Command


def add_report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="CSV_OR_CASE", help="a scan CSV (dgs-desktop scan --csv) or a case file")
    parser.add_argument("--html", metavar="OUT", help="self-contained HTML report to write")
    parser.add_argument("--pdf", metavar="OUT", help="PDF report to write (rendered by Qt, no browser)")
    parser.add_argument("--checkpoint", metavar="DIR",
                        help="checkpoint folder whose manifest describes the model (default: the one the "
                             "rows name, when it is a local folder with the recorded sha256)")
    parser.add_argument("--examiner", metavar="NAME", help="examiner named at the top of the report "
                        "(default: the case's, if any)")
    parser.add_argument("--case-number", metavar="NUMBER", help="case number at the top of the report "
                        "(default: the case's, if any)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace OUT even if it is not a report dgs-desktop wrote")


def run_report(args: argparse.Namespace) -> int:
    from ..report import build_html, check_output, find_model, read_source, write_html

    if not args.html and not args.pdf:
        raise UsageError("give --html OUT.html and/or --pdf OUT.pdf")
    outputs = [p for p in (args.html, args.pdf) if p]
    if len(outputs) == 2 and args.html == args.pdf:
        raise UsageError("--html and --pdf must be different files")
    for out in outputs:  # refuse before any work, and never the input itself
        check_output(out, args.overwrite)
    source = read_source(args.source)
    source.examiner = args.examiner if args.examiner is not None else source.examiner
    source.case_number = args.case_number if args.case_number is not None else source.case_number
    model = find_model(source.run, args.checkpoint)
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=len(source.items), unit="img", file=sys.stderr, desc="report")
    try:
        html = build_html(source, model, progress=(lambda done, total: bar.update(1)) if bar else None)
    finally:
        if bar is not None:
            bar.close()
    if args.html:
        write_html(html, args.html, overwrite=args.overwrite)
        print(f"Wrote {args.html} ({len(source.items)} images)", file=sys.stderr)
    if args.pdf:
        from ..gui.report_pdf import write_pdf

        write_pdf(html, args.pdf, overwrite=args.overwrite, title=f"DGS Desktop report — {source.path.name}")
        print(f"Wrote {args.pdf}", file=sys.stderr)
    return EXIT_OK


REPORT = Command("report", "write the analyst's report (HTML, PDF) from a scan CSV or a case file",
                 add_report_arguments, run_report)
