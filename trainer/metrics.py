"""Detection metrics of the paper's tables: Acc, R.Acc, F.Acc (threshold 0.5) and AP."""

from __future__ import annotations

import math

import numpy as np

from dgs_desktop.verdict import DEFAULT_THRESHOLD, is_fake


def average_precision(labels, scores) -> float:
    """Average precision with fake (label 1) as the positive class, as scikit-learn computes it.

    AP = sum_n (R_n - R_{n-1}) P_n over the distinct score thresholds in decreasing order
    (tied scores form one threshold, no interpolation). NaN when there is no positive.
    """
    y = np.asarray(labels, dtype=np.int64).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise ValueError("labels and scores differ in length")
    positives = int(y.sum())
    if y.size == 0 or positives == 0:
        return math.nan
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    # last index of each run of equal scores = one threshold
    last = np.r_[np.flatnonzero(np.diff(s) != 0), y.size - 1]
    tp = np.cumsum(y)[last]
    fp = (last + 1) - tp
    precision = tp / (tp + fp)
    recall = tp / positives
    previous = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - previous) * precision))


def detection_metrics(labels, probabilities, threshold: float = DEFAULT_THRESHOLD) -> dict[str, float]:
    """acc, r_acc, f_acc (prediction fake when p > threshold, as the authors' validate.py) and ap."""
    y = np.asarray(labels, dtype=np.int64).ravel()
    p = np.asarray(probabilities, dtype=np.float64).ravel()
    pred = is_fake(p, threshold).astype(np.int64)
    real, fake = y == 0, y == 1

    def mean(mask) -> float:
        return float((pred[mask] == y[mask]).mean()) if mask.any() else math.nan

    return {"n_real": int(real.sum()), "n_fake": int(fake.sum()), "acc": mean(np.ones_like(real)),
            "r_acc": mean(real), "f_acc": mean(fake), "ap": average_precision(y, p)}


def mean_metrics(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    """Unweighted mean over subsets (NaN entries skipped), as the tables' mAcc / mAP."""
    out: dict[str, float] = {"n_real": sum(r["n_real"] for r in rows.values()),
                             "n_fake": sum(r["n_fake"] for r in rows.values())}
    for key in ("acc", "r_acc", "f_acc", "ap"):
        values = [r[key] for r in rows.values() if not math.isnan(r[key])]
        out[key] = float(np.mean(values)) if values else math.nan
    return out


def format_table(rows: dict[str, dict[str, float]], mean: dict[str, float]) -> str:
    def pct(value: float) -> str:
        return "   n/a" if math.isnan(value) else f"{100 * value:6.1f}"

    width = max([len("subset"), len("mean")] + [len(k) for k in rows])
    lines = [f"{'subset':<{width}}  {'real':>6} {'fake':>6}  {'Acc':>6} {'R.Acc':>6} {'F.Acc':>6} {'AP':>6}"]
    for name, r in list(rows.items()) + [("mean", mean)]:
        if name == "mean":
            lines.append("-" * len(lines[0]))
        lines.append(f"{name:<{width}}  {r['n_real']:>6} {r['n_fake']:>6}  {pct(r['acc'])} {pct(r['r_acc'])} "
                     f"{pct(r['f_acc'])} {pct(r['ap'])}")
    return "\n".join(lines)
