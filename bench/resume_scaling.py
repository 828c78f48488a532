"""--resume reads a results CSV in one pass: time for 4,000 vs 20,000 rows, each with one
row that cannot be understood at the end (the case that used to be quadratic: 4,000 rows took
28 s, 20,000 more than 5 minutes). Linear time gives a ratio near 5.

    python bench/resume_scaling.py
"""

from __future__ import annotations

import time

from dgs_desktop.record import ScanRecord
from dgs_desktop.scan.csvio import CsvError, RunInfo, csv_text, parse_results_csv

RUN = RunInfo(checkpoint="/models/dgs", checkpoint_sha256="ab" * 32, device="cpu", threshold=0.5)


def results_csv(rows: int, bad_last_row: bool) -> bytes:
    results = (ScanRecord(path=f"/evidence/folder/img{i:06d}.jpg", status="ok", sha256="0" * 64,
                          fake_probability=(i % 997) / 997, width=1024, height=768, format="JPEG")
               for i in range(rows))
    text = csv_text(results, RUN)
    if bad_last_row:
        text += "/evidence/folder/hand-edited.jpg,not,a,row\n"
    return text.encode("utf-8")


def seconds_to_read(data: bytes, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        try:
            parse_results_csv(data)
        except CsvError:
            pass
        best = min(best, time.perf_counter() - start)
    return best


def main() -> None:
    for bad in (False, True):
        small, large = seconds_to_read(results_csv(4_000, bad)), seconds_to_read(results_csv(20_000, bad))
        label = "bad last row" if bad else "clean file  "
        print(f"{label}: 4,000 rows {small * 1e3:7.1f} ms, 20,000 rows {large * 1e3:7.1f} ms, "
              f"ratio {large / small:.2f} (linear: ~5)")


if __name__ == "__main__":
    main()
