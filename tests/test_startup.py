"""Warm start: the verify cache skips re-hashing only files that are unchanged, and the meta-device
build gives the same detector as the initialised one."""

import json
import os
import shutil

import pytest
import torch

from dgs_desktop.detector.checkpoint import LOAD_STAGES, load_detector
from dgs_desktop.detector.manifest import HEADS_FILE, read_checkpoint
from dgs_desktop.detector.verified import CACHE_NAME, VerifyCache
from dgs_desktop.errors import CheckpointError

LATER = 10**12 * 10**3  # a clock far past the files' ctime: nothing is "racy"


def _copy(tiny_checkpoint, tmp_path):
    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint.directory, folder)
    return folder


def _cache(tmp_path):
    return VerifyCache(tmp_path / CACHE_NAME, clock=lambda: os.stat(tmp_path).st_ctime_ns + LATER)


def test_warm_read_hashes_nothing_and_a_changed_byte_is_still_refused(tiny_checkpoint, tmp_path, monkeypatch):
    folder = _copy(tiny_checkpoint, tmp_path)
    read_checkpoint(folder, verify_cache=_cache(tmp_path))
    hashed = []
    import dgs_desktop.detector.manifest as manifest

    real = manifest.sha256_file
    monkeypatch.setattr(manifest, "sha256_file", lambda path, **kw: hashed.append(path.name) or real(path, **kw))
    read_checkpoint(folder, verify_cache=_cache(tmp_path))
    assert hashed == []  # every file vouched for by the cache
    target = folder / HEADS_FILE
    before = os.stat(target)
    data = bytearray(target.read_bytes())
    data[-1] ^= 0x01
    with open(target, "r+b") as handle:  # same inode, same size
        handle.write(bytes(data))
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # the old mtime back
    after = os.stat(target)
    assert (after.st_ino, after.st_size, after.st_mtime_ns) == (before.st_ino, before.st_size, before.st_mtime_ns)
    with pytest.raises(CheckpointError, match=f"{HEADS_FILE} is corrupt or was modified"):
        read_checkpoint(folder, verify_cache=_cache(tmp_path))
    assert hashed == [HEADS_FILE]


def test_a_file_changed_just_before_hashing_is_not_remembered(tiny_checkpoint, tmp_path):
    folder = _copy(tiny_checkpoint, tmp_path)
    cache = VerifyCache(tmp_path / CACHE_NAME)  # the real clock: the copies are seconds old at most
    read_checkpoint(folder, verify_cache=cache)
    assert not (tmp_path / CACHE_NAME).exists() or json.loads((tmp_path / CACHE_NAME).read_text())["files"] == {}


@pytest.mark.parametrize("content", [b"\x00\xff not json", b"[1, 2]", b'{"format": "other", "files": {}}',
                                     b"{" * 100_000, b" " * 300_000])
def test_a_hostile_cache_file_is_ignored_and_left_alone(tiny_checkpoint, tmp_path, content):
    folder = _copy(tiny_checkpoint, tmp_path)
    (tmp_path / CACHE_NAME).write_bytes(content)
    checkpoint = read_checkpoint(folder, verify_cache=_cache(tmp_path))
    assert checkpoint.manifest["files"]
    assert (tmp_path / CACHE_NAME).read_bytes() == content


def test_a_cache_entry_with_the_wrong_hash_vouches_for_nothing(tiny_checkpoint, tmp_path):
    folder = _copy(tiny_checkpoint, tmp_path)
    read_checkpoint(folder, verify_cache=_cache(tmp_path))
    data = json.loads((tmp_path / CACHE_NAME).read_text())
    for entry in data["files"].values():
        entry["sha256"] = "0" * 64
        entry["size"] = "big"
    (tmp_path / CACHE_NAME).write_text(json.dumps(data))
    cache = _cache(tmp_path)
    assert not any(cache.vouches_for(folder / name, digest) for name, digest in
                   tiny_checkpoint.manifest["files"].items())


def test_meta_build_scores_exactly_like_the_initialised_build(tiny_checkpoint):
    images = torch.rand(3, 3, 224, 224, generator=torch.Generator().manual_seed(1))
    stages = []
    fast = load_detector(tiny_checkpoint, on_stage=lambda name, fraction: stages.append((name, fraction)))
    slow = load_detector(tiny_checkpoint, with_text=True)  # the text tower forces the initialised build
    with torch.no_grad():
        assert torch.equal(fast(images), slow(images))
    names = [name for name, _ in stages]
    assert names[0] == LOAD_STAGES[1] and names[-1] == LOAD_STAGES[2]
    assert [f for n, f in stages if n == LOAD_STAGES[2]] == sorted(f for n, f in stages if n == LOAD_STAGES[2])


def test_the_window_shows_the_loading_stages_and_stays_responsive(qtbot, tiny_checkpoint, tmp_path, monkeypatch):
    pytest.importorskip("pytestqt")
    import time

    from gui_helpers import open_window

    from dgs_desktop.gui import model_controller
    from dgs_desktop.gui.model_controller import READY
    from dgs_desktop.gui.responsiveness import TickRecorder

    monkeypatch.setenv("DGS_DESKTOP_CACHE", str(tmp_path / "cache"))
    assert not hasattr(model_controller, "load_scorer")  # imported inside the worker, off the GUI thread
    window = open_window(qtbot, settings_path=str(tmp_path / "settings.ini"))
    qtbot.waitUntil(lambda: window.controller.libraries_ready, timeout=60_000)
    stages, bar = [], []
    window.controller.load_stage.connect(lambda name, fraction: stages.append((name, fraction)))
    window.controller.load_stage.connect(lambda *_: bar.append((window.banner.busy.value(),
                                                                 window.banner.busy.format())))
    import dgs_desktop.detector.scorer as scorer_module

    slow_check = scorer_module.check_finite_head
    monkeypatch.setattr(scorer_module, "check_finite_head", lambda d: (time.sleep(0.5), slow_check(d)))
    with TickRecorder() as ticks:
        window.models.load(str(tiny_checkpoint.directory), "cpu")
        qtbot.waitUntil(lambda: window.controller.state == READY, timeout=60_000)
    names = list(dict.fromkeys(name for name, _ in stages))
    assert names == list(LOAD_STAGES)
    assert [value for value, _ in bar] == sorted(value for value, _ in bar) and bar[-1][0] == 1000
    assert any("loading weights (3 of 4)" == text for _, text in bar)
    assert len(ticks.gaps) > 20 and max(ticks.gaps) < 0.4  # the 0.5 s check ran off the GUI thread
    window.banner.show_state("loading model", "Loading the model demo…")
    window.banner.show_stage(LOAD_STAGES[2], 0.5)
    window.banner.setVisible(True)
    window.grab().save(str(tmp_path / "loading.png"))
    assert window.banner.busy.format() == "loading weights (3 of 4)" and window.banner.busy.value() == 625
