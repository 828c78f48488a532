"""Shared test set-up: headless Qt, no network, tiny models."""

import os

# Must be set before Qt or huggingface_hub are imported anywhere.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the verify cache and caption cache of a test run stay out of the user's own cache
os.environ.setdefault("DGS_DESKTOP_CACHE", os.path.join(__import__("tempfile").mkdtemp(prefix="dgs-test-cache-")))

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory):
    """A test-tiny checkpoint with non-zero LoRA weights and head (scores vary per image)."""
    from dgs_desktop.detector.demo import save_demo_checkpoint
    from dgs_desktop.detector.manifest import read_checkpoint

    return read_checkpoint(save_demo_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny"))


@pytest.fixture
def tiny_training_env(monkeypatch, tmp_path):
    """One intra-op thread (on 2 shared cores ~20x faster for tiny models), a private cache,
    no network: what the trainer tests run under."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("DGS_DESKTOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def cycles_collected_on_the_gui_thread(request):
    """A test with Qt runs as the window does: Python's cycle collector only on the GUI thread
    (`gui.workers.GuiThreadCollector`). Afterwards the test's deleted windows are collected
    here, and the other tests get CPython's automatic collection back."""
    if "qtbot" not in request.fixturenames and "qapp" not in request.fixturenames:
        yield
        return
    import gc

    from PySide6.QtCore import QCoreApplication, QEvent

    from dgs_desktop.gui.workers import collect_cycles_on_gui_thread

    collector = collect_cycles_on_gui_thread(request.getfixturevalue("qapp"))
    yield
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    collector.stop()
