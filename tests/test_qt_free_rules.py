"""Rules the window shares with the scan, the CSV and the report, tested without PySide6: the
reliability warning, the same-content grouping, the detail loader and the model warning."""

from __future__ import annotations

import pytest

from dgs_desktop.record import ScanRecord, reliability_warning


@pytest.mark.parametrize("fields, expected", [
    (dict(width=256, height=256, distinct_patches=49, padded=False), ""),
    (dict(width=128, height=128, distinct_patches=16, padded=False),
     "fewer than 49 distinct patches (n=16): less reliable"),
    (dict(width=20, height=300, distinct_patches=9, padded=True),
     "fewer than 49 distinct patches (n=9): less reliable; padded to 32 px: less reliable"),
    # a record stored before the structured fields existed: judged by its size, never by its notes
    (dict(width=64, height=20, notes=["whatever"]),
     "fewer than 49 distinct patches (n=2): less reliable; padded to 32 px: less reliable"),
    (dict(width=300, height=300, notes=["fewer than 49 distinct patches (n=1): less reliable"]), ""),
])
def test_reliability_warning_reads_the_structured_fields(fields, expected):
    assert reliability_warning(ScanRecord(path="/x.png", status="ok", **fields)) == expected
