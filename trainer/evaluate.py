"""`dgs-desktop-train evaluate`: Acc, R.Acc, F.Acc and AP per subset, as the authors' test.py.

One row per top-level folder of the test root (a generator; every category beneath it
pooled), then `mean` (plain mean of the rows, test.py's Mean line), then `paper_table`
(the paper's Tables 1/3: mAcc. over one R.Acc. column and each subset's F.Acc.; mA.P.).

Scoring goes through the app's scan engine (`dgs_desktop.scan.engine.Scanner`): same
decoder, same content-seeded patch selection, same batching and autocast as `dgs-desktop
scan`. Robustness perturbations (Tables 5-6) are applied to the decoded image and written to
a temporary file that the engine then scans: Gaussian blur first (`blur_backend` "pillow":
`ImageFilter.GaussianBlur(radius=sigma)`, whose radius is the standard deviation, approximated
with three box blurs; "scipy": the authors' data_augment, `scipy.ndimage.gaussian_filter` on
each uint8 channel in place; saved losslessly as PNG), then JPEG
re-encoding at quality Q (Pillow `save(format="JPEG", quality=Q)`, libjpeg defaults: 4:2:0
chroma subsampling, baseline, no optimisation), the order of the authors' data_augment.

`decoding` "authors" decodes as their `Image.open().convert("RGB")` (scan.decode.AUTHORS).
Every result records how it was scored (`EvalResult.facts`, trainer.facts).
"""

from __future__ import annotations

import csv
import io
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from dgs_desktop.atomic import atomic_path
from dgs_desktop.detector.modelcard import SCORING_SETTINGS
from dgs_desktop.errors import UsageError
from dgs_desktop.scan.csvio import format_probability
from dgs_desktop.scan.decode import ANALYST
from dgs_desktop.verdict import DEFAULT_THRESHOLD

from .facts import FACT_COLUMNS, scoring_facts
from .metrics import detection_metrics, mean_metrics, paper_table_metrics
from .sources import Sample, SampleSet, evaluation_groups

TABLE_COLUMNS = ("subset", "n_real", "n_fake", "acc", "r_acc", "f_acc", "ap")
SCORE_COLUMNS = ("path", "subset", "category", "label", "fake_probability", "error")
BLUR_BACKENDS = ("pillow", "scipy")  # pillow: the app's default; scipy: the authors' data_augment


@dataclass
class EvalResult:
    rows: dict[str, dict[str, float]]  # subset -> metrics, in the test root's folder order
    mean: dict[str, float]
    paper_table: dict[str, float]
    scores: list[tuple[Sample, float | None, str]]  # (sample, probability, error)
    note: str | None = None  # for the table heading (e.g. real images shared by every generator's row)
    facts: dict[str, str] | None = None  # how the scores were computed (trainer.facts.FACT_COLUMNS)

    @property
    def errors(self) -> list[tuple[str, str]]:
        return [(s.name, err) for s, p, err in self.scores if p is None]


def check_blur_backend(backend: str) -> str:
    if backend not in BLUR_BACKENDS:
        raise ValueError(f"unknown blur backend {backend!r}; choose one of {', '.join(BLUR_BACKENDS)}")
    return backend


def gaussian_blur(image, sigma: float, backend: str = "pillow"):
    """`image` (RGB) blurred with standard deviation `sigma` by `backend` (BLUR_BACKENDS)."""
    if check_blur_backend(backend) == "pillow":
        from PIL import ImageFilter

        return image.filter(ImageFilter.GaussianBlur(radius=float(sigma)))
    import numpy as np
    from PIL import Image

    try:
        from scipy.ndimage import gaussian_filter
    except ImportError:
        raise UsageError("--blur-backend scipy needs scipy: pip install 'dgs-desktop[paper]'") from None
    pixels = np.array(image)
    for channel in range(pixels.shape[2]):  # in place on uint8, as the authors' data_augment
        gaussian_filter(pixels[:, :, channel], output=pixels[:, :, channel], sigma=float(sigma))
    return Image.fromarray(pixels)


def perturb_bytes(path, jpeg_quality: int | None, blur_sigma: float | None, blur_backend: str = "pillow",
                  decoding: str = ANALYST) -> tuple[bytes, str]:
    """Encoded bytes and suffix of the perturbed image (a path or a sample; raises DecodeError)."""
    from dgs_desktop.scan.decode import decode_image

    decoded = path.decode(decoding=decoding) if hasattr(path, "decode") else decode_image(path, decoding=decoding)
    image = decoded.image
    if blur_sigma:
        image = gaussian_blur(image, blur_sigma, blur_backend)
    buffer = io.BytesIO()
    if jpeg_quality is not None:
        image.save(buffer, format="JPEG", quality=int(jpeg_quality))
        return buffer.getvalue(), ".jpg"
    image.save(buffer, format="PNG")
    return buffer.getvalue(), ".png"


def evaluate_detector(detector, dataset: SampleSet, device, *, threshold: float = DEFAULT_THRESHOLD, batch_size: int | None = None,
                      workers: int | None = None, jpeg_quality: int | None = None,
                      blur_sigma: float | None = None, progress: bool = True,
                      precision: str = "auto", dist=None, decoding: str = ANALYST,
                      blur_backend: str = "pillow") -> EvalResult:
    """Scores every image and builds the table. Under torchrun (`dist`, a `trainer.distributed.Dist`)
    each process scores every world-th image and the scores are gathered in dataset order: an
    image's score does not depend on its batch, so the table equals a single process's.
    The perturbed images are already decoded as `decoding` says: the engine reads them plainly."""
    from tqdm import tqdm

    from dgs_desktop.scan.decode import DecodeError
    from dgs_desktop.scan.engine import Scanner

    if blur_sigma:  # before any image is perturbed
        check_blur_backend(blur_backend)
    was_training = detector.training
    rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
    mine = list(range(len(dataset.samples)))[rank::world]
    samples = [dataset.samples[i] for i in mine]
    tmp = None
    paths: list = list(samples)  # the engine decodes a sample itself (file or dataset row)
    perturb_errors: dict[int, str] = {}
    try:
        if jpeg_quality is not None or blur_sigma:
            tmp = Path(tempfile.mkdtemp(prefix="dgs-eval-"))
            paths = []
            for i, sample in enumerate(tqdm(samples, desc="perturbing", unit="img", disable=not progress)):
                target = tmp / f"{i:08d}"
                try:
                    data, suffix = perturb_bytes(sample, jpeg_quality, blur_sigma, blur_backend, decoding)
                    target = target.with_suffix(suffix)
                    target.write_bytes(data)
                except DecodeError as exc:
                    perturb_errors[i] = str(exc)
                paths.append(target)
        # A perturbed image was decoded as `decoding` says already; its PNG/JPEG copy has no EXIF.
        scanner = Scanner(detector, device, batch_size=batch_size, workers=workers, precision=precision,
                          decoding=decoding)
        facts = scoring_facts(scanner, blur_backend if blur_sigma else "")
        scores: list[tuple[Sample, float | None, str]] = []
        bar = tqdm(total=len(samples), desc="evaluating", unit="img", disable=not progress or rank != 0,
                   dynamic_ncols=True)
        for sample, result in zip(samples, scanner.scan(paths)):
            i = len(scores)
            if i in perturb_errors:
                scores.append((sample, None, perturb_errors[i]))
            elif result.ok and result.fake_probability is not None:
                scores.append((sample, float(result.fake_probability), ""))
            else:
                scores.append((sample, None, result.error or "not scored"))
            bar.update(1)
        bar.close()
    finally:
        detector.train(was_training)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    if world > 1:  # every process gets all scores, in dataset order
        gathered = dist.all_gather_object([(i, prob, error) for i, (_, prob, error) in zip(mine, scores)])
        by_index = {i: (prob, error) for part in gathered for i, prob, error in part}
        scores = [(sample, *by_index[i]) for i, sample in enumerate(dataset.samples)]

    # One row per subset; where real images form their own subset (a dataset's `Real`
    # generator), every generator's row pairs its fakes with all real images.
    groups, note = evaluation_groups([sample for sample, _, _ in scores])
    rows = {}
    for group in groups:
        scored = [(scores[i][0].label, scores[i][1]) for i in group.indices if scores[i][1] is not None]
        if scored:
            labels, probs = zip(*scored)
            rows[group.name] = detection_metrics(labels, probs, threshold)
    mean, paper = (mean_metrics(rows), paper_table_metrics(rows)) if rows else ({}, {})
    if note and rows:  # every row holds the same real images: the summaries count them once
        mean["n_real"] = paper["n_real"] = sum(1 for sample, prob, _ in scores if sample.label == 0 and prob is not None)
    return EvalResult(rows=rows, mean=mean, paper_table=paper, scores=scores, note=note, facts=facts)


def write_metrics_csv(path: str | Path, result: EvalResult, extra: dict | None = None) -> None:
    """The table: one row per subset, then `mean`, then `paper_table`; `extra` columns
    (the perturbation) and the scoring facts repeat on every row."""
    extra = {**(extra or {}), **{k: (result.facts or {}).get(k, "") for k in FACT_COLUMNS}}
    columns = list(TABLE_COLUMNS) + list(extra.keys())
    summary_rows = [("mean", result.mean), ("paper_table", result.paper_table)]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for name, row in list(result.rows.items()) + summary_rows:
            values = [name, row["n_real"], row["n_fake"]] + [
                "" if math.isnan(row[k]) else f"{row[k]:.6f}" for k in ("acc", "r_acc", "f_acc", "ap")]
            writer.writerow(values + list(extra.values()))


def write_scores_csv(path: str | Path, result: EvalResult) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(SCORE_COLUMNS)
        for sample, prob, err in result.scores:
            writer.writerow([sample.name, sample.subset, sample.category, sample.label,
                             format_probability(prob), err])


def summary(result: EvalResult) -> dict:
    """Plain floats for a manifest (NaN -> None)."""
    def clean(row):
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()}

    return {"per_subset": {k: clean(v) for k, v in result.rows.items()}, "mean": clean(result.mean),
            "paper_table": clean(result.paper_table), "unscored": len(result.errors),
            "scoring": {k: v for k, v in (result.facts or {}).items() if k in SCORING_SETTINGS}}
