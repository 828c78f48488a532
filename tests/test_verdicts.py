"""Verdicts an analyst can defend (issue 17): calibration on real photos, the same score on
every machine, and `inconclusive` with named reasons where DGS-Net is known to fail."""

from __future__ import annotations

import csv
import io
import json
from fractions import Fraction
from math import comb
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from dgs_desktop.calibration import (
    CalibrationError,
    allowed_false_positives,
    build_calibration,
    calibrated_threshold,
    clopper_pearson,
    load_calibration,
    reference_rate,
    write_calibration,
)
from dgs_desktop.cli import main
from dgs_desktop.detector.patches import (
    ENTROPY_RANK_STEP,
    choose_cells,
    entropy_order,
    high_frequency_ratio,
    reordered_mosaic,
    select_patches,
)
from dgs_desktop.record import ScanRecord
from dgs_desktop.verdict import MAX_RESAMPLED_RATIO, MIN_JPEG_QUALITY, assess, inconclusive_reasons


# ------------------------------------------------------------------ calibration arithmetic
def exact_binomial_cdf(k: int, n: int, p: Fraction) -> Fraction:
    """P(X <= k) in exact rational arithmetic: an independent computation of the tail."""
    return sum((comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k + 1)), Fraction(0))


@pytest.mark.parametrize("k,n", [(0, 1), (0, 20), (1, 20), (3, 30), (7, 50), (25, 50), (49, 50), (50, 50)])
def test_clopper_pearson_bounds_solve_the_exact_binomial_tails(k, n):
    low, high = clopper_pearson(k, n)
    alpha = Fraction(5, 100)
    if k < n:  # P(X <= k; high) = alpha/2
        assert abs(exact_binomial_cdf(k, n, Fraction(high)) - alpha / 2) < Fraction(1, 10**9)
    else:
        assert high == 1.0
    if k > 0:  # P(X >= k; low) = alpha/2
        assert abs(1 - exact_binomial_cdf(k - 1, n, Fraction(low)) - alpha / 2) < Fraction(1, 10**9)
    else:
        assert low == 0.0
        assert high == pytest.approx(1 - 0.025 ** (1 / n), abs=1e-12)  # the closed form for k = 0
    assert low <= k / n <= high


def test_clopper_pearson_matches_the_published_value():
    low, high = clopper_pearson(3, 30)  # 3 of 30: the textbook interval 2.11 % - 26.53 %
    assert round(low, 4) == 0.0211 and round(high, 4) == 0.2653


def brute_force_threshold(scores, target):
    """The smallest T among 0 and the scores with #(p > T) / n <= target, by exhaustive search."""
    n = len(scores)
    for t in sorted({0.0, *scores}):
        if Fraction(sum(p > t for p in scores), n) <= Fraction(repr(target)):
            return t
    raise AssertionError("no threshold")


@pytest.mark.parametrize("seed", range(6))
def test_threshold_is_the_smallest_with_the_target_rate(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    scores = [float(v) for v in np.round(rng.beta(2, 5, n), 3)]  # rounded: many ties
    for target in (0.0, 0.01, 0.05, 0.29, 0.5):
        threshold = calibrated_threshold(scores, target)
        assert threshold == brute_force_threshold(scores, target)
        assert sum(p > threshold for p in scores) <= allowed_false_positives(n, target)
    assert allowed_false_positives(100, 0.29) == 29  # not 28, as 0.29 * 100 is in floating point


def test_reference_rate_counts_images_scoring_at_least_as_high():
    scores = sorted([0.1, 0.2, 0.2, 0.5, 0.9])
    assert reference_rate(scores, 0.2) == 4 / 5 and reference_rate(scores, 0.21) == 2 / 5
    assert reference_rate(scores, 0.95) == 0.0 and reference_rate(scores, 0.0) == 1.0


def test_calibration_file_round_trip_and_refusals(tmp_path):
    real = [(f"/r/{i}.jpg", f"{i:064x}", p) for i, p in enumerate(np.linspace(0.01, 0.99, 50))]
    real.append(("/r/copy.jpg", f"{0:064x}", 0.5))  # the same content again: counted once
    calibration = build_calibration(real, "c" * 64, 0.1, fake_scores=[0.95, 0.99, 0.2])
    assert calibration.n == 50 and calibration.false_positives.k == 5
    assert calibration.detection.k == 2 and calibration.detection.n == 3
    assert "only 50 reference images" in calibration.warning()
    written = write_calibration(tmp_path / "cal.json", calibration)
    loaded = load_calibration(tmp_path / "cal.json")
    assert loaded.threshold == calibration.threshold and loaded.scores == calibration.scores
    assert loaded.sha256 == written.sha256 and len(loaded.sha256) == 64
    with pytest.raises(CalibrationError, match="another|not with this"):
        loaded.check_checkpoint("d" * 64)
    data = json.loads((tmp_path / "cal.json").read_text())
    data["threshold"] = 0.01  # edited by hand: does not follow from the scores
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match="not a valid"):
        load_calibration(tmp_path / "edited.json")
    (tmp_path / "notes.json").write_text('{"mine": 1}')
    with pytest.raises(CalibrationError, match="not overwritten"):
        write_calibration(tmp_path / "notes.json", calibration)
    assert (tmp_path / "notes.json").read_text() == '{"mine": 1}'


# ----------------------------------------------------------------------- the tie rule
def test_near_tied_entropies_rank_by_patch_index():
    rng = np.random.default_rng(0)
    entropies = np.round(rng.uniform(2, 9, (12, 12)) / ENTROPY_RANK_STEP) * ENTROPY_RANK_STEP
    entropies[3:6, :] = 5.0  # exactly tied (flat areas)
    jittered = entropies + rng.uniform(-3e-8, 3e-8, entropies.shape)  # another machine's FFT
    assert np.array_equal(entropy_order(entropies), entropy_order(jittered))
    chosen, _ = choose_cells(jittered)
    assert np.array_equal(chosen, choose_cells(entropies)[0])
    tied = np.flatnonzero(entropies.ravel() == 5.0)
    order = list(entropy_order(entropies))
    positions = [order.index(i) for i in tied]
    assert positions == sorted(positions)  # equals keep their row-major order


def test_reordered_mosaic_is_select_patches_with_another_seed():
    rng = np.random.default_rng(5)
    for shape in [(256, 320, 3), (100, 150, 3), (40, 40, 3)]:
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        selection = select_patches(image)
        for seed in (1, 2, 8):
            assert np.array_equal(reordered_mosaic(selection, seed), select_patches(image, seed=seed).mosaic)


# --------------------------------------------------------------------- inconclusive
def record(**fields) -> ScanRecord:
    values = dict(path="/x.png", status="ok", fake_probability=0.3, distinct_patches=49, padded=False)
    values.update(fields)
    return ScanRecord(**values)


def test_each_reason_makes_the_verdict_inconclusive_and_keeps_the_probability():
    assert assess(record(), 0.5).verdict == "real" and assess(record(fake_probability=0.7), 0.5).verdict == "fake"
    cases = {
        "few-patches": record(distinct_patches=16),
        "padded": record(padded=True),
        "recompressed": record(jpeg_quality=MIN_JPEG_QUALITY - 1),
        "resampled": record(high_frequency_ratio=MAX_RESAMPLED_RATIO / 2),
        "unstable": record(stability_orders=8, stability_low=0.45, stability_high=0.55),
        "provenance-conflict": record(provenance_claim="ai"),
    }
    for code, case in cases.items():
        assessment = assess(case, 0.5)
        assert assessment.verdict == "inconclusive" and [r.split(":")[0] for r in assessment.reasons] == [code]
        assert case.fake_probability == 0.3
    assert assess(record(jpeg_quality=MIN_JPEG_QUALITY), 0.5).verdict == "real"  # the bound itself is fine
    assert assess(record(stability_orders=8, stability_low=0.1, stability_high=0.49), 0.5).verdict == "real"
    # a camera-signed manifest contradicts only a fake verdict; an AI declaration only a real one
    assert assess(record(provenance_claim="camera"), 0.5).verdict == "real"
    assert assess(record(provenance_claim="camera", fake_probability=0.9), 0.5).verdict == "inconclusive"
    assert assess(record(provenance_claim="ai", fake_probability=0.9), 0.5).verdict == "fake"
    assert assess(record(status="error", fake_probability=None), 0.5).verdict == ""
    assert inconclusive_reasons(record(fake_probability=float("nan"), distinct_patches=3), 0.5) == []


def photo_like(size: int, seed: int = 0) -> np.ndarray:
    """1/f noise plus sensor noise: spectrally like a camera image."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]
    f = np.hypot(fx, fy)
    f[0, 0] = 1
    channels = []
    for _ in range(3):
        plane = np.real(np.fft.ifft2((rng.normal(size=(size, size)) + 1j * rng.normal(size=(size, size))) / f))
        channels.append((plane - plane.mean()) / plane.std() * 40 + 128)
    return np.clip(np.stack(channels, -1) + rng.normal(0, 4, (size, size, 3)), 0, 255).astype(np.uint8)


def test_high_frequency_ratio_tells_an_upscale_from_a_camera_image():
    native = photo_like(512)
    upscaled = np.asarray(Image.fromarray(photo_like(256, seed=1)).resize((512, 512), Image.BICUBIC))
    native_ratio = high_frequency_ratio(select_patches(native))
    upscaled_ratio = high_frequency_ratio(select_patches(upscaled))
    assert native_ratio > 3 * MAX_RESAMPLED_RATIO and upscaled_ratio < MAX_RESAMPLED_RATIO


def scan_rows(tmp_path, checkpoint, *args) -> dict[str, dict[str, str]]:
    out = tmp_path / f"out{len(list(tmp_path.glob('out*.csv')))}.csv"
    assert main(["scan", *args, "--checkpoint", str(checkpoint.directory), "--csv", str(out), "--no-progress"]) == 0
    with open(out, newline="", encoding="utf-8") as handle:
        return {row["path"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}


def test_constructed_images_get_their_reasons_in_the_csv(tiny_checkpoint, tmp_path):
    folder = tmp_path / "evidence"
    folder.mkdir()
    Image.fromarray(photo_like(320)).save(folder / "camera.png")
    Image.fromarray(photo_like(320, seed=2)[:100, :120]).save(folder / "small.png")
    Image.fromarray(photo_like(320, seed=3)[:20, :200]).save(folder / "sliver.png")
    Image.fromarray(photo_like(320, seed=4)).save(folder / "social.jpg", quality=40)
    Image.fromarray(photo_like(160, seed=5)).resize((320, 320), Image.BICUBIC).save(folder / "upscaled.png")
    png = io.BytesIO()
    info = PngInfo()
    info.add_text("parameters", "a photo of a cat\nSteps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1, Model: sd15")
    Image.fromarray(photo_like(320, seed=6)).save(png, format="PNG", pnginfo=info)
    (folder / "generated.png").write_bytes(png.getvalue())
    rows = scan_rows(tmp_path, tiny_checkpoint, str(folder), "--threshold", "1.0")  # every score is real
    codes = {name: {r.split(":")[0] for r in row["inconclusive_reasons"].split("; ") if r} for name, row in rows.items()}
    assert codes["camera.png"] == set() and rows["camera.png"]["verdict"] == "real"
    assert codes["small.png"] == {"few-patches"} and rows["small.png"]["distinct_patches"] == "9"
    assert codes["sliver.png"] == {"few-patches", "padded"} and rows["sliver.png"]["padded"] == "yes"
    assert codes["social.jpg"] == {"recompressed"} and rows["social.jpg"]["jpeg_quality"] == "40"
    assert codes["upscaled.png"] == {"resampled"}
    assert codes["generated.png"] == {"provenance-conflict"} and rows["generated.png"]["provenance_claim"] == "ai"
    for name, row in rows.items():
        assert row["verdict"] == ("inconclusive" if codes[name] else "real")
        assert 0 <= float(row["fake_probability"]) <= 1  # never changed, never hidden


def test_stability_and_tta_in_the_scan(tiny_checkpoint, tmp_path):
    import torch

    from dgs_desktop.detector.scorer import load_scorer
    from dgs_desktop.scan.engine import ModelRunner
    from dgs_desktop.stability import order_scores

    Image.fromarray(photo_like(288, seed=7)).save(tmp_path / "a.png")
    plain = scan_rows(tmp_path, tiny_checkpoint, str(tmp_path / "a.png"))["a.png"]
    spread = scan_rows(tmp_path, tiny_checkpoint, str(tmp_path / "a.png"), "--stability", "4")["a.png"]
    mean = scan_rows(tmp_path, tiny_checkpoint, str(tmp_path / "a.png"), "--tta", "4")["a.png"]
    assert spread["fake_probability"] == plain["fake_probability"]  # --stability reports, never changes the score
    runner = ModelRunner(load_scorer(tiny_checkpoint, torch.device("cpu")), torch.device("cpu"), 8)  # the scan's
    others = order_scores(np.asarray(Image.open(tmp_path / "a.png").convert("RGB")), runner.score,
                          float(plain["fake_probability"]), k=4).others
    every = [float(plain["fake_probability"]), *others]
    assert spread["stability_orders"] == "4"
    assert float(spread["stability_low"]) == pytest.approx(min(every), abs=1e-7)
    assert float(spread["stability_high"]) == pytest.approx(max(every), abs=1e-7)
    assert float(mean["fake_probability"]) == pytest.approx(sum(every[:4]) / 4, abs=1e-7)
    assert mean["tta_orders"] == "4" and plain["tta_orders"] == ""
    # a threshold inside the spread makes it unstable
    inside = (float(spread["stability_low"]) + float(spread["stability_high"])) / 2
    if float(spread["stability_high"]) > float(spread["stability_low"]):
        row = scan_rows(tmp_path, tiny_checkpoint, str(tmp_path / "a.png"), "--stability", "4",
                        "--threshold", f"{inside:.8f}")["a.png"]
        assert row["verdict"] == "inconclusive" and row["inconclusive_reasons"].startswith("unstable")


def test_calibrate_then_scan_with_the_calibration(tiny_checkpoint, tmp_path, capsys):
    from dgs_desktop.detector.demo import save_demo_checkpoint

    real, fake = tmp_path / "real", tmp_path / "fake"
    real.mkdir()
    fake.mkdir()
    for i in range(12):
        Image.fromarray(photo_like(256, seed=10 + i)).save(real / f"r{i}.png")
    for i in range(3):
        Image.fromarray(photo_like(256, seed=40 + i)).save(fake / f"f{i}.png")
    cal = tmp_path / "cal.json"
    assert main(["calibrate", str(real), "--fake", str(fake), "--checkpoint", str(tiny_checkpoint.directory),
                 "--target-fpr", "0.1", "--out", str(cal), "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "only 12 reference images" in err and "at most" in err
    calibration = load_calibration(cal)
    assert calibration.n == 12 and calibration.checkpoint_sha256 == tiny_checkpoint.sha256
    assert len(calibration.references) == 12 and calibration.detection.n == 3
    assert calibration.threshold == calibrated_threshold(calibration.scores, 0.1)
    rows = scan_rows(tmp_path, tiny_checkpoint, str(real), "--calibration", str(cal))
    for row in rows.values():
        p = float(row["fake_probability"])
        assert float(row["threshold"]) == calibration.threshold  # every digit of T
        assert float(row["reference_fpr"]) == pytest.approx(sum(s >= p for s in calibration.scores) / 12)
        assert row["reference_n"] == "12" and row["calibration_sha256"] == calibration.sha256
    assert sum(row["verdict"] == "fake" for row in rows.values()) <= 1  # 10 % of 12
    other = save_demo_checkpoint(tmp_path / "other", seed=99)
    code = main(["scan", str(real), "--checkpoint", str(other), "--calibration", str(cal),
                 "--csv", str(tmp_path / "x.csv"), "--no-progress"])
    assert code == 2 and "calibrate this checkpoint" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()


def test_resume_refuses_rows_of_another_precision(tiny_checkpoint, tmp_path, capsys):
    Image.fromarray(photo_like(256)).save(tmp_path / "a.png")
    Image.fromarray(photo_like(256, seed=1)).save(tmp_path / "b.png")
    out = tmp_path / "r.csv"
    args = ["--checkpoint", str(tiny_checkpoint.directory), "--csv", str(out), "--no-progress"]
    assert main(["scan", str(tmp_path / "a.png"), *args, "--precision", "bf16"]) == 0
    capsys.readouterr()
    assert main(["scan", str(tmp_path / "a.png"), str(tmp_path / "b.png"), *args, "--resume"]) == 2
    assert "precision bf16" in capsys.readouterr().err


def test_namespace_records_assess_like_records():
    stored = SimpleNamespace(status="ok", fake_probability=0.6, distinct_patches=49, padded=False, jpeg_quality=None,
                             high_frequency_ratio=None, stability_orders=None, stability_low=None,
                             stability_high=None, provenance_claim="")
    assert assess(stored, 0.5).verdict == "fake"
