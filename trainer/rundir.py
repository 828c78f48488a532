"""The run folder (`OUT.run/` or --run-dir): resume state, metrics.csv, loss.png, feature cache.

Rank 0 writes it. metrics.csv is kept consistent with the saved state on --resume. The
trainer writes only into a folder it created (marked with `dgs_run.json`) or an empty one:
a folder holding anything else is refused, so a user's files are never overwritten.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path

from dgs_desktop.atomic import atomic_path

from .config import TrainConfig
from .errors import TrainError

STATE_FILE = "state.pt"
FEATURES_FILE = "teacher_features.safetensors"
METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"
MARKER_FILE = "dgs_run.json"  # says this folder was created by the trainer
OUR_FILES = frozenset({STATE_FILE, FEATURES_FILE, METRICS_FILE, PLOT_FILE, MARKER_FILE})
_TEMP_NAME = re.compile(r"^\.(.+)\.\d+\.\d+\.tmp$")  # dgs_desktop.atomic.atomic_path's temporary names
METRIC_COLUMNS = ("stage", "epoch", "step", "images", "loss", "loss_img", "loss_text", "loss_teacher",
                  "loss_align", "acc", "lr", "images_per_s", "elapsed_s", "val_acc", "val_ap")


def run_dir_for(config: TrainConfig) -> Path:
    if config.run_dir:
        return Path(config.run_dir)
    out = Path(config.out)
    return out.with_name(out.name + ".run")


class MetricsLog:
    """metrics.csv rows (rank 0 writes; other ranks keep them in memory only)."""

    def __init__(self, path: Path, enabled: bool):
        self.path = path
        self.enabled = enabled
        self.rows: list[dict] = []

    def load(self, keep) -> None:
        """Keeps the rows of the file for which `keep(row)` is true, and rewrites it."""
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            self.rows = [row for row in csv.DictReader(handle) if keep(row)]
        self._rewrite()

    def add(self, **values) -> None:
        row = {k: "" for k in METRIC_COLUMNS}
        for key, value in values.items():
            row[key] = f"{value:.6g}" if isinstance(value, float) else str(value)
        self.rows.append(row)
        if self.enabled:
            new = not self.path.exists()
            with open(self.path, "a", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, lineterminator="\n")
                if new:
                    writer.writeheader()
                writer.writerow(row)

    def last(self, stage: str) -> dict | None:
        rows = [r for r in self.rows if r["stage"] == stage]
        return rows[-1] if rows else None

    def _rewrite(self) -> None:
        if not self.enabled:
            return
        with atomic_path(self.path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=METRIC_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(self.rows)

    def plot(self, path: Path) -> None:
        if not self.enabled:
            return
        from .plot import plot_panels

        def series(stage: str, key: str):
            return [(float(row["step"]), float(row[key])) for row in self.rows
                    if row["stage"] == stage and row.get(key, "") not in ("", None)]

        plot_panels(path, [
            ("stage 1: teacher probe h_img^T (BCE)", {"loss": series("probe", "loss")}),
            ("stage 2: DGS losses", {k: series("dgs", k) for k in ("loss", "loss_img", "loss_text", "loss_teacher")}),
            ("stage 2: L_align and accuracy", {"loss_align": series("dgs", "loss_align"),
                                                "acc": series("dgs", "acc"), "val_acc": series("val", "val_acc")}),
        ])


def foreign_entries(run_dir: Path) -> list[str]:
    """Names in `run_dir` that are not regular files of ours (or our temporary files)."""
    names = []
    for entry in os.scandir(run_dir):
        temp = _TEMP_NAME.match(entry.name)
        base = temp.group(1) if temp else entry.name
        if base not in OUR_FILES or not entry.is_file(follow_symlinks=False):
            names.append(entry.name)
    return sorted(names)


def check_run_dir(run_dir: Path) -> None:
    """Refuses a run folder that holds anything DGS Desktop did not write there.

    Ours: a folder with our marker file and only our file names in it. A folder without the
    marker is ours only while empty: a user's metrics.csv or loss.png is never overwritten.
    """
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise TrainError(f"run folder {run_dir} exists and is not a folder; choose another --run-dir")
    foreign = foreign_entries(run_dir)
    marked = (run_dir / MARKER_FILE).is_file()
    if foreign or (not marked and any(run_dir.iterdir())):
        shown = foreign or sorted(p.name for p in run_dir.iterdir())
        raise TrainError(f"run folder {run_dir} holds files DGS Desktop did not write ("
                         + ", ".join(shown[:3]) + (", …" if len(shown) > 3 else "")
                         + "); choose a new or empty folder with --run-dir")


def prepare_run_dir(config: TrainConfig, run_dir: Path, dist) -> None:
    """Checks --out and the run folder against --resume, then creates and marks it (rank 0)."""
    from dgs_desktop.detector.manifest import check_output_folder

    out = Path(config.out)
    check_output_folder(out)  # before any work: the checkpoint will go there
    check_run_dir(run_dir)  # every process, before anything is written
    state = run_dir / STATE_FILE
    if config.resume and not state.exists():
        raise TrainError(f"--resume: no saved state in {run_dir} (nothing to resume)")
    if not config.resume and state.exists():
        raise TrainError(f"{run_dir} holds the state of an earlier run; pass --resume to continue it "
                         f"or remove the folder to start again")
    dist.barrier()
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        marker = run_dir / MARKER_FILE
        if not marker.exists():
            marker.write_text(json.dumps({"written_by": "dgs-desktop-train", "checkpoint": str(out)}) + "\n",
                              encoding="utf-8")
        if not config.resume:  # ours (checked above): the leftovers of a run stopped before its first save
            for name in (METRICS_FILE, PLOT_FILE):
                (run_dir / name).unlink(missing_ok=True)
    dist.barrier()
