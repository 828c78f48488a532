"""Train on a parquet dataset, evaluate per generator from disk and through the fake hub, publish.

The dataset is written in the test the way the hub stores one (tests/parquetgen.py): `image`,
`label` ClassLabel (real, fake), `generator` ClassLabel whose `Real` value marks the real images.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from parquetgen import write_dataset

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("tiny_training_env")]  # end to end

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ARGS = ["--arch", "test-tiny", "--captioner", "test-tiny", "--batch-size", "8", "--workers", "0",
              "--no-progress", "--device", "cpu"]
EVAL_ARGS = ["--no-progress", "--workers", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("hubdata") / "bench", {"train": 4, "test": 3}, seed=3,
                         broken_split="train")


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _hub_env(endpoint: str, home: Path, cache: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1", HF_TOKEN="hf_fake_write_token",
               DGS_DESKTOP_CACHE=str(cache), OMP_NUM_THREADS="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    return env


def test_train_evaluate_publish_from_a_hub_dataset(dataset, tmp_path, capsys):
    from dgs_desktop.cli import main as app_main
    from dgs_desktop.detector.manifest import read_checkpoint
    from trainer.cli import main

    out = tmp_path / "ckpt"
    rc = main(["--data", str(dataset), "--split", "train", "--classes", "SD14", "--out", str(out),
               "--max-steps", "2", "--probe-epochs", "1"] + TRAIN_ARGS)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "unreadable" in err and "no embedded image bytes" in err  # broken rows skipped, not fatal
    assert "neither real nor fake" in err
    provenance = read_checkpoint(out).manifest["provenance"]
    # --classes SD14 keeps SD14's fakes and every real image (they belong to no generator); the
    # row without a label and the real row without image bytes are left out (the undecodable
    # row is a ProGAN one, dropped by --classes)
    assert provenance["counts"] == {"Real": {"real": 8, "fake": 0}, "SD14": {"real": 0, "fake": 4}}
    assert provenance["data"]["kind"] == "parquet" and provenance["data"]["split"] == "train"
    assert provenance["data"]["classes"] == ["SD14"]
    assert provenance["unreadable_skipped"] == 2

    table, scores = tmp_path / "local.csv", tmp_path / "local_scores.csv"
    rc = main(["evaluate", "--checkpoint", str(out), "--data", str(dataset), "--split", "test", "--csv", str(table),
               "--scores", str(scores)] + EVAL_ARGS)
    printed = capsys.readouterr().out
    assert rc == 0, printed
    assert "all 6 real images (Real) as negatives" in printed
    rows = {r["subset"]: r for r in _read_csv(table)}
    assert {"ProGAN", "SD14", "mean"} <= set(rows) and "Real" not in rows
    assert (rows["ProGAN"]["n_real"], rows["ProGAN"]["n_fake"]) == ("6", "3")
    assert rows["ProGAN"]["r_acc"] == rows["SD14"]["r_acc"]  # one R.Acc column, as in the paper
    assert (rows["paper_table"]["n_real"], rows["paper_table"]["n_fake"]) == ("6", "6")  # reals counted once
    local_scores = _read_csv(scores)
    assert len(local_scores) == 12 and all(r["fake_probability"] for r in local_scores)

    # every dataset row scores exactly as the same bytes scanned as a file by the app
    from trainer.sources import DataOptions, open_source

    files = tmp_path / "as_files"
    files.mkdir()
    by_name = {}
    for k, sample in enumerate(open_source(dataset, DataOptions(split="test")).samples):
        target = files / f"{k:03d}.{sample.decode().format.lower()}"
        target.write_bytes(sample.read_bytes())
        by_name[sample.rel] = target.name
    scan_csv = tmp_path / "scan.csv"
    assert app_main(["scan", str(files), "--checkpoint", str(out), "--csv", str(scan_csv), "--device", "cpu"]) == 0
    scanned = {Path(r["path"]).name: r["fake_probability"] for r in _read_csv(scan_csv)}
    assert {r["path"]: r["fake_probability"] for r in local_scores} == {rel: scanned[name]
                                                                       for rel, name in by_name.items()}

    # the same split through the fake hub as a dataset repository: the same table and scores;
    # then publish the checkpoint with that table and read the card back from the hub
    from fakehub import FakeHub

    home, hub_table, hub_scores = tmp_path / "hf_home", tmp_path / "hub.csv", tmp_path / "hub_scores.csv"
    with FakeHub(lifetime=170) as hub:
        hub.add_repo("lab/bench", dataset, repo_type="dataset")
        env = _hub_env(hub.endpoint, home, tmp_path / "cache")
        trained = subprocess.run(
            [sys.executable, "-m", "trainer", "--data", "hf-dataset:lab/bench", "--split", "train", "--classes", "SD14",
             "--out", str(tmp_path / "from_hub"), "--max-steps", "2", "--probe-epochs", "1"] + TRAIN_ARGS,
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=170)
        evaluated = subprocess.run(
            [sys.executable, "-m", "trainer", "evaluate", "--checkpoint", str(out), "--data", "hf-dataset:lab/bench",
             "--split", "test", "--csv", str(hub_table), "--scores", str(hub_scores)] + EVAL_ARGS,
            env=env, cwd=ROOT, capture_output=True, text=True, timeout=170)
        published = subprocess.run(
            [sys.executable, "-m", "trainer", "publish", str(out), "--repo", "lab/dgs-bench", "--eval",
             f"bench={hub_table}"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=170)
        card = hub.files("lab/dgs-bench")["README.md"].decode()
        fetched = [p for _, p, _ in hub.requests("GET", "/datasets/lab/bench/resolve/")]
    assert trained.returncode == 0, trained.stderr[-3000:]
    from_hub = read_checkpoint(tmp_path / "from_hub").manifest["provenance"]
    assert from_hub["counts"] == provenance["counts"] and from_hub["data"]["kind"] == "hf-dataset"
    assert from_hub["data"]["repo"] == "lab/bench" and from_hub["data"]["split"] == "train"
    assert from_hub["captions"]["new"] == 0  # the same images were captioned by the first run: cached
    assert "teacher features of view 0: from" in trained.stderr  # and their teacher features were kept
    # ... and the run ends with exactly the weights of the first one
    first, again = read_checkpoint(out).manifest["files"], read_checkpoint(tmp_path / "from_hub").manifest["files"]
    assert first["lora.safetensors"] == again["lora.safetensors"] and first["heads.safetensors"] == again["heads.safetensors"]
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert _read_csv(hub_table) == _read_csv(table)
    assert _read_csv(hub_scores) == local_scores
    assert sum("train-" in p for p in fetched) == 2  # the two train shards, once, for training
    assert published.returncode == 0, published.stderr[-3000:]
    assert "hf:lab/dgs-bench@" in published.stdout
    assert "### bench" in card and "| ProGAN | 6 | 3 |" in card and "SD14" in card
