"""Hub downloads through a fake hub on 127.0.0.1 (tests/fakehub.py); no network needed.

huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE / HF_HOME when it is first imported, so each
scenario runs `download_checkpoint` in a fresh Python process with its own environment (a small
runner that executes a list of steps and prints one JSON result per step): one process online
against the fake hub, then (server stopped) one with HF_HUB_OFFLINE=1 and one online against a
closed port. Scores are computed in this process from the directories the runners return.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fakehub import FakeHub, run_steps

ROOT = Path(__file__).resolve().parents[1]

RUNNER = r"""
import json, sys, time
from pathlib import Path

steps = json.loads(sys.argv[1])
for step in steps:
    from dgs_desktop.errors import CheckpointError
    from dgs_desktop.detector.hub import download_checkpoint
    events = []
    limit = step.get("cancel_after")

    def progress(done, total, message):
        events.append([done, total, message])

    def cancel():
        return limit is not None and any(e[0] >= limit for e in events)

    result = {"spec": step["spec"], "ok": False}
    start = time.monotonic()
    try:
        ckpt = download_checkpoint(step["spec"], progress=progress, cancel=cancel, cache_dir=step.get("cache_dir"))
        result.update(ok=True, directory=str(ckpt.directory), manifest_sha=ckpt.sha256, source=ckpt.source,
                      files=ckpt.manifest["files"])
    except CheckpointError as exc:
        result.update(error=str(exc), error_type=type(exc).__name__)
    result["elapsed"] = time.monotonic() - start
    result["progress"] = events
    print("RESULT " + json.dumps(result), flush=True)
"""


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(steps: list[dict], *, endpoint: str, hf_home: Path, offline: bool) -> tuple[list[dict], str]:
    return run_steps(RUNNER, steps, endpoint=endpoint, hf_home=hf_home, offline=offline, root=ROOT, timeout=120)


def _probs(checkpoint) -> list[float]:
    """Scores of a fixed batch (computed in this process: the runners only download)."""
    import torch

    from dgs_desktop.detector.checkpoint import load_detector
    from dgs_desktop.detector.manifest import read_checkpoint

    if not hasattr(checkpoint, "manifest"):
        checkpoint = read_checkpoint(checkpoint)
    torch.manual_seed(0)
    images = torch.randn(3, 3, 224, 224)
    with torch.no_grad():
        return torch.sigmoid(load_detector(checkpoint)(images)).tolist()


@pytest.fixture(scope="module")
def hub_runs(tiny_checkpoint, tmp_path_factory):
    """Runs every scenario once (online, offline, unreachable) and returns their results."""
    home = tmp_path_factory.mktemp("hf_home")
    empty_cache = tmp_path_factory.mktemp("hf_cache_empty")
    folder = tiny_checkpoint.directory
    with FakeHub(lifetime=180) as hub:
        hub.add_repo("lab/tiny", folder)
        hub.add_repo("lab/tiny", folder, branch="v1")
        hub.add_repo("lab/corrupt", folder)
        hub.set_fault("lab/corrupt", "lora.safetensors", "corrupt", times=1)
        hub.add_repo("lab/badmanifest", folder)
        hub.set_fault("lab/badmanifest", "dgs_checkpoint.json", "corrupt", times=1)
        hub.add_repo("lab/drop", folder)
        hub.set_fault("lab/drop", "base_visual.safetensors", "drop", times=1)
        hub.add_repo("lab/cancel", folder)
        hub.add_repo("lab/notackpt", {"README.md": b"# just a readme\n"})
        online = [
            {"spec": "hf:lab/tiny"},
            {"spec": "hf:lab/tiny@v1"},
            {"spec": "hf:lab/corrupt"},
            {"spec": "hf:lab/corrupt"},
            {"spec": "hf:lab/badmanifest"},
            {"spec": "hf:lab/badmanifest"},
            {"spec": "hf:lab/drop"},
            {"spec": "hf:lab/cancel", "cancel_after": 1000},
            {"spec": "hf:lab/cancel"},
            {"spec": "hf:lab/missing"},
            {"spec": "hf:lab/tiny@no-such-branch"},
            {"spec": "hf:lab/notackpt"},
        ]
        closed = f"http://127.0.0.1:{_closed_port()}"
        online_results, online_stderr = _run(online, endpoint=hub.endpoint, hf_home=home, offline=False)
        log = list(hub.log)
        incomplete = sorted(str(p) for p in home.rglob("*.incomplete"))
        # the server is gone from here on: only the cache can answer
    with ThreadPoolExecutor(2) as pool:
        offline = pool.submit(_run, [{"spec": "hf:lab/tiny"}, {"spec": "hf:lab/never"},
                                     {"spec": "hf:lab/tiny", "cache_dir": str(empty_cache)}],
                              endpoint=closed, hf_home=home, offline=True)
        unreachable = pool.submit(_run, [{"spec": "hf:lab/tiny"}, {"spec": "hf:lab/never"}],
                                  endpoint=closed, hf_home=home, offline=False)
        offline_results, _ = offline.result()
        empty_results = offline_results[2:]
        unreachable_results, unreachable_stderr = unreachable.result()
    return {
        "online_list": online_results, "online_stderr": online_stderr, "log": log, "incomplete": incomplete,
        "offline": offline_results, "unreachable": unreachable_results, "unreachable_stderr": unreachable_stderr,
        "empty": empty_results, "home": home, "reference": _probs(tiny_checkpoint),
        "uploaded": tiny_checkpoint,
    }


def _one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


# ------------------------------------------------------------------------------------ spec
def test_parse_hub_spec():
    from dgs_desktop.detector.hub import parse_hub_spec
    from dgs_desktop.errors import CheckpointError

    assert parse_hub_spec("hf:org/name") == ("org/name", None)
    assert parse_hub_spec("hf:org/name@v1.2") == ("org/name", "v1.2")
    assert parse_hub_spec("hf:org/name@refs/pr/3") == ("org/name", "refs/pr/3")
    assert parse_hub_spec("hf:org/name@" + "a" * 40) == ("org/name", "a" * 40)
    for bad in ("org/name", "hf:", "hf:org/name@", "hf:a/b/c", "hf:org/na me", "hf:org/-bad..name"):
        with pytest.raises(CheckpointError):
            parse_hub_spec(bad)


# -------------------------------------------------------------------------------- online
def test_download_matches_uploaded_checkpoint(hub_runs):
    first = hub_runs["online_list"][0]
    assert first["ok"], first
    uploaded = hub_runs["uploaded"]
    assert first["manifest_sha"] == uploaded.sha256
    assert first["files"] == uploaded.manifest["files"]
    assert first["source"] == "hf:lab/tiny"
    assert _probs(first["directory"]) == pytest.approx(hub_runs["reference"], abs=1e-6)
    # into the normal hub cache under HF_HOME, pinned to a commit
    directory = Path(first["directory"])
    assert directory.parent.name == "snapshots" and len(directory.name) == 40
    assert str(hub_runs["home"]) in first["directory"]
    # progress: byte counts grow to a positive total
    sized = [event for event in first["progress"] if event[1] > 0]
    assert sized and sized[-1][0] == sized[-1][1] == sum(
        (directory / name).stat().st_size for name in uploaded.manifest["files"])
    assert all(a[0] <= b[0] for a, b in zip(sized, sized[1:]))
    # a tag/branch pointing at the same commit is the same checkpoint
    assert hub_runs["online_list"][1]["ok"] and hub_runs["online_list"][1]["directory"] == first["directory"]


def test_wrong_bytes_are_rejected_and_not_cached(hub_runs):
    bad, again = hub_runs["online_list"][2:4]
    assert not bad["ok"]
    _one_line(bad["error"])
    assert "lora.safetensors" in bad["error"] and "sha256" in bad["error"]
    assert again["ok"], again  # the corrupt copy was removed from the cache, so it is fetched again
    gets = [entry for entry in hub_runs["log"] if entry[0] == "GET" and "lab/corrupt" in entry[1]
            and entry[1].endswith("lora.safetensors")]
    assert len(gets) == 2


def test_corrupt_manifest_is_rejected_and_not_cached(hub_runs):
    bad, again = hub_runs["online_list"][4:6]
    assert not bad["ok"] and "dgs_checkpoint.json" in bad["error"]
    _one_line(bad["error"])
    assert again["ok"], again


def test_dropped_connection_mid_file_recovers(hub_runs):
    result = hub_runs["online_list"][6]
    assert result["ok"], result
    gets = [entry for entry in hub_runs["log"] if entry[0] == "GET" and "lab/drop" in entry[1]
            and entry[1].endswith("base_visual.safetensors")]
    assert len(gets) == 2  # cut once, then resumed or restarted within the same call
    assert "Traceback" not in hub_runs["online_stderr"]


def test_cancel_aborts_cleanly_and_next_call_succeeds(hub_runs):
    cancelled, again = hub_runs["online_list"][7:9]
    assert not cancelled["ok"] and cancelled["error_type"] == "DownloadCancelled"
    assert "cancelled" in cancelled["error"]
    assert again["ok"], again
    assert hub_runs["incomplete"] == []  # no partial files left in the cache


def test_missing_repo_revision_and_manifest_give_clear_errors(hub_runs):
    missing, no_revision, not_checkpoint = hub_runs["online_list"][9:12]
    for result in (missing, no_revision, not_checkpoint):
        assert not result["ok"]
        _one_line(result["error"])
        assert result["elapsed"] < 5
    assert "not found" in missing["error"] and "lab/missing" in missing["error"]
    assert "revision" in no_revision["error"] and "no-such-branch" in no_revision["error"]
    assert "dgs_checkpoint.json" in not_checkpoint["error"]


# ------------------------------------------------------------------------- cache / offline
def test_offline_loads_from_cache_without_server(hub_runs):
    cached, never, _ = hub_runs["offline"]
    assert cached["ok"], cached
    assert cached["directory"] == hub_runs["online_list"][0]["directory"]
    assert _probs(cached["directory"]) == pytest.approx(hub_runs["reference"], abs=1e-6)
    assert not never["ok"] and "not in the local cache and offline" in never["error"]
    _one_line(never["error"])


def test_offline_with_empty_cache_fails_fast(hub_runs):
    (result,) = hub_runs["empty"]
    assert not result["ok"]
    assert "not in the local cache and offline" in result["error"]
    _one_line(result["error"])
    assert result["elapsed"] < 3


def test_unreachable_hub_uses_cache_or_says_so(hub_runs):
    cached, never = hub_runs["unreachable"]
    assert cached["ok"], cached
    assert _probs(cached["directory"]) == pytest.approx(hub_runs["reference"], abs=1e-6)
    assert not never["ok"]
    assert "cannot reach the Hugging Face hub" in never["error"] and "not in the local cache" in never["error"]
    _one_line(never["error"])
    assert never["elapsed"] < 3
    assert "Traceback" not in hub_runs["unreachable_stderr"]


def test_fakehub_is_loopback_only_and_stops():
    import urllib.error
    import urllib.request

    hub = FakeHub(lifetime=0.5).start()
    assert hub.endpoint.startswith("http://127.0.0.1:")
    hub.add_repo("a/b", {"f.txt": b"hello world"})
    request = urllib.request.Request(hub.endpoint + "/a/b/resolve/main/f.txt", headers={"Range": "bytes=6-"})
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 206 and response.read() == b"world"
        assert len(response.headers["X-Repo-Commit"]) == 40
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(hub.endpoint + "/a/b/resolve/main/missing.txt", timeout=5)
    assert info.value.headers["X-Error-Code"] == "EntryNotFound"
    endpoint = hub.endpoint
    deadline = time.monotonic() + 5
    while hub._server is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert hub._server is None  # stopped by itself after its lifetime
    with pytest.raises(OSError):
        urllib.request.urlopen(endpoint + "/a/b/resolve/main/f.txt", timeout=2)
