"""Qt-free math behind the window and the report: the stability check and the threshold-split histogram bins."""

from __future__ import annotations

import numpy as np
import pytest

from dgs_desktop.stability import Stability, order_scores, order_seeds
from dgs_desktop.verdict import verdict


def test_stability_scores_other_orders_of_the_same_patches():
    from dgs_desktop.detector.patches import select_patches

    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (256, 320, 3), dtype=np.uint8)
    seen = []

    def score(mosaics):
        seen.extend(mosaics)
        return [float(m[:32, :32].mean()) / 255 for m in mosaics]  # depends on which patch is in cell 0

    result = order_scores(image, score, reference=0.5)
    assert len(result.others) == 8 and order_seeds() == list(range(1, 9))
    reference = select_patches(image)
    for mosaic in seen:  # the same 49 patches, in another order
        cells = sorted(mosaic[r:r + 32, c:c + 32].tobytes() for r in range(0, 224, 32) for c in range(0, 224, 32))
        expected = sorted(reference.mosaic[r:r + 32, c:c + 32].tobytes() for r in range(0, 224, 32)
                          for c in range(0, 224, 32))
        assert cells == expected
    assert len({m.tobytes() for m in seen}) > 1
    assert order_scores(image, score, reference=0.5) == result  # fixed seeds: the same numbers every time


def test_stability_summary_uses_the_one_verdict_rule():
    stability = Stability(reference=0.5, others=(0.5, 0.49, 0.51, 0.6))
    assert stability.spread == pytest.approx(0.11) and stability.low == 0.49 and stability.high == 0.6
    assert stability.fake_count(0.5) == sum(verdict(p, 0.5) == "fake" for p in stability.others) == 2
    assert "2 of 4 orders give the same verdict" in stability.summary(0.5)  # 0.5 is real at 0.5


@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.5413, 1.0])
def test_histogram_bins_split_at_the_threshold(threshold):
    from dgs_desktop.histogram import threshold_bins

    values = [0.5413, 0.5401, 0.5441, 0.5431, 0.5641, 0.5557, 0.5530, 0.5267, 0.5847, 0.5335, 0.0, 1.0, 0.3]
    bins = threshold_bins(values, threshold)
    assert sum(bins.counts) == len(values)
    assert threshold in bins.edges and bins.edges[bins.split] == threshold
    assert list(bins.edges) == sorted(bins.edges) and len(bins.edges) == len(bins.counts) + 1
    real = sum(verdict(v, threshold) == "real" for v in values)
    assert sum(bins.counts[:bins.split]) == real  # no bar mixes real and fake
    assert sum(bins.counts[bins.split:]) == len(values) - real


def test_histogram_bins_adapt_to_the_data():
    from dgs_desktop.histogram import bin_count, threshold_bins

    narrow = [0.52 + i * 1e-4 for i in range(300)]  # test-tiny scores: all within 0.03
    bins = threshold_bins(narrow, 0.5)
    assert bins.edges[0] >= 0.49 and bins.edges[-1] <= 0.56  # the axis spans the data, not 0..1
    assert sum(1 for c in bins.counts if c) >= 10  # the scores are spread over many bars
    assert bin_count(4) < bin_count(100) < bin_count(10_000) == bin_count(1_000_000)
