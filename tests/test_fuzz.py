"""Property test: any bytes -> decode -> patch selection -> model gives a probability in [0, 1]
or a clean DecodeError, never anything else (no other exception, no hang, no NaN)."""

from __future__ import annotations

import math
import signal

import imagegen
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dgs_desktop.detector.patches import select_patches
from dgs_desktop.scan.decode import DecodeError, decode_bytes
from dgs_desktop.scan.engine import ModelRunner

FUZZ_MAX_PIXELS = 4_000_000  # mutated headers may declare big images; keep each example fast


def _seeds() -> list[bytes]:
    small = imagegen.noise_rgb(48, 40, seed=31)
    tiny = imagegen.noise_rgb(7, 5, seed=32)
    return [
        imagegen.encode(small, "PNG"),
        imagegen.encode(small, "JPEG", quality=80),
        imagegen.encode(small, "JPEG", quality=80, progressive=True),
        imagegen.encode(small.convert("P"), "GIF"),
        imagegen.animated("GIF", frames=2, size=24),
        imagegen.encode(small, "WEBP", quality=70),
        imagegen.encode(small, "TIFF"),
        imagegen.encode(small, "BMP"),
        imagegen.encode(tiny.convert("LA"), "PNG"),
        imagegen.encode(tiny.convert("CMYK"), "TIFF"),
        imagegen.jpeg_with_orientation(tiny, 6),
        imagegen.png_16bit_rgb(16),
        imagegen.float_with_nan(16),
    ]


SEEDS = _seeds()


@st.composite
def mutated_images(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "set", "truncate", "insert", "delete", "duplicate", "header"]))
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set":
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80, draw(st.integers(0, 255))]))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "duplicate":
            end = min(len(data), at + draw(st.integers(1, 256)))
            data[at:at] = data[at:end]
        else:  # corrupt the first bytes, where sizes, modes and offsets live
            at = draw(st.integers(0, min(len(data) - 1, 40)))
            data[at] = draw(st.integers(0, 255))
    return bytes(data)


any_bytes = st.one_of(mutated_images(), mutated_images(), st.binary(max_size=2048),
                      st.sampled_from(SEEDS).map(lambda seed: seed[: len(seed) // 3]))


@pytest.fixture(scope="module")
def runner(tiny_checkpoint):
    from dgs_desktop.detector.scorer import load_scorer

    return ModelRunner(load_scorer(tiny_checkpoint, "cpu"), torch.device("cpu"))


def _expire(signum, frame):
    raise TimeoutError("one fuzz example took more than 20 s (hang?)")


@settings(max_examples=100, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=any_bytes)
def test_any_bytes_give_a_probability_or_a_clean_decode_error(runner, data):
    previous = signal.signal(signal.SIGALRM, _expire)
    signal.alarm(20)
    try:
        try:
            decoded = decode_bytes(data, max_pixels=FUZZ_MAX_PIXELS)
        except DecodeError as exc:
            message = str(exc)
            assert message and "\n" not in message and "Traceback" not in message
            assert exc.sha256 and len(exc.sha256) == 64
            return
        assert decoded.image.mode == "RGB" and decoded.width > 0 and decoded.height > 0
        selection = select_patches(decoded.image)
        assert selection.mosaic.shape == (224, 224, 3) and selection.mosaic.dtype == np.uint8
        (probability,) = runner.score([selection.mosaic])
        assert math.isfinite(probability) and 0.0 <= probability <= 1.0
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_the_seeds_themselves_decode():
    for seed in SEEDS:
        assert decode_bytes(seed).image.mode == "RGB"
