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


def _nanmean(values) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(np.mean(values)) if values else math.nan


def mean_metrics(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    """Plain mean of the subset rows (NaN entries skipped), as the Mean line of the authors' test.py."""
    out: dict[str, float] = {"n_real": sum(r["n_real"] for r in rows.values()),
                             "n_fake": sum(r["n_fake"] for r in rows.values())}
    for key in ("acc", "r_acc", "f_acc", "ap"):
        out[key] = _nanmean([r[key] for r in rows.values()])
    return out


def paper_table_metrics(rows: dict[str, dict[str, float]]) -> dict[str, float]:
    """The paper's Tables 1/3 summary: mAcc = mean([mean R.Acc] + each subset's F.Acc), the
    tables having one real-image column and one column per generator; mA.P. = mean AP.

    `r_acc` is that one R.Acc column (the mean over subsets); `f_acc` is left empty (NaN).
    """
    r_acc = _nanmean([r["r_acc"] for r in rows.values()])
    columns = [r_acc] + [r["f_acc"] for r in rows.values()]
    return {"n_real": sum(r["n_real"] for r in rows.values()), "n_fake": sum(r["n_fake"] for r in rows.values()),
            "acc": _nanmean(columns), "r_acc": r_acc, "f_acc": math.nan,
            "ap": _nanmean([r["ap"] for r in rows.values()])}


def _pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{100 * value:.1f}"


def format_log_lines(rows: dict[str, dict[str, float]], mean: dict[str, float], paper: dict[str, float]) -> str:
    """The table as the authors' log_test.log prints it, one line per subset and a Mean line,
    then the paper's mAcc./mA.P. line and the image counts."""
    lines = []
    for i, (name, r) in enumerate(rows.items()):
        lines.append(f"({i} {name:12}) acc: {_pct(r['acc'])}; ap: {_pct(r['ap'])}; "
                     f"r_acc: {_pct(r['r_acc'])}; f_acc: {_pct(r['f_acc'])}")
    lines.append(f"({len(rows)} {'Mean':10}) acc: {_pct(mean['acc'])}; ap: {_pct(mean['ap'])}; "
                 f"r_acc: {_pct(mean['r_acc'])}; f_acc: {_pct(mean['f_acc'])}")
    lines.append(f"paper table: mAcc. {_pct(paper['acc'])}; mA.P. {_pct(paper['ap'])} "
                 f"(mAcc. = mean of the mean R.Acc. and each subset's F.Acc.)")
    lines.append(f"images: {mean['n_real']} real, {mean['n_fake']} fake in {len(rows)} subset(s)")
    return "\n".join(lines)
