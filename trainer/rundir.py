"""The run folder (`OUT.run/` or --run-dir): resume state, metrics.csv, loss.png, feature cache.

Rank 0 writes it. metrics.csv is kept consistent with the saved state on --resume.
"""

from __future__ import annotations

import csv
from pathlib import Path

from dgs_desktop.atomic import atomic_path

from .config import TrainConfig

STATE_FILE = "state.pt"
FEATURES_FILE = "teacher_features.safetensors"
METRICS_FILE = "metrics.csv"
PLOT_FILE = "loss.png"
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


def prepare_run_dir(config: TrainConfig, run_dir: Path, dist) -> None:
    """Checks --out and the run folder against --resume, then creates the folder (rank 0)."""
    from .errors import TrainError

    out = Path(config.out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / "dgs_checkpoint.json").exists())):
        raise TrainError(f"--out {out} exists and is not a DGS checkpoint folder; choose a new folder")
    state = run_dir / STATE_FILE
    if config.resume and not state.exists():
        raise TrainError(f"--resume: no saved state in {run_dir} (nothing to resume)")
    if not config.resume and state.exists():
        raise TrainError(f"{run_dir} holds the state of an earlier run; pass --resume to continue it "
                         f"or remove the folder to start again")
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        if not config.resume:
            for name in (METRICS_FILE, PLOT_FILE):
                (run_dir / name).unlink(missing_ok=True)
    dist.barrier()
