"""Publishing a checkpoint with its model card (trainer/publish.py) and reading the card back
(dgs_desktop/detector/modelcard.py), against the fake hub on 127.0.0.1 (tests/fakehub.py).

huggingface_hub reads HF_ENDPOINT / HF_HUB_OFFLINE at import time, so uploads and downloads run
in a fresh Python process per scenario (HF_HUB_DISABLE_XET=1: the fake hub has no Xet storage,
so the client takes the LFS upload path).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dgs_desktop.detector.manifest import read_checkpoint
from dgs_desktop.detector.modelcard import card_metrics
from trainer.errors import TrainError
from trainer.publish import card_text, read_eval_csv

ROOT = Path(__file__).resolve().parents[1]

TABLE = """subset,n_real,n_fake,acc,r_acc,f_acc,ap,jpeg_quality,blur_sigma
ProGAN,40,20,0.950000,0.925000,1.000000,0.998000,,
SD14,40,20,0.900000,0.925000,0.850000,0.970000,,
mean,80,40,0.925000,0.925000,0.925000,0.984000,,
paper_table,80,40,0.925000,0.925000,0.925000,0.984000,,
"""


@pytest.fixture()
def eval_csv(tmp_path):
    path = tmp_path / "aigibench.csv"
    path.write_text(TABLE)
    return path


def test_eval_csv_rows_and_summaries(eval_csv, tmp_path):
    table = read_eval_csv(str(eval_csv))
    assert table.name == "aigibench"
    assert [r["subset"] for r in table.rows] == ["ProGAN", "SD14"]
    assert table.rows[1]["f_acc"] == 0.85 and table.rows[1]["n_fake"] == 20
    assert table.mean["ap"] == 0.984 and table.paper_table["acc"] == 0.925
    assert read_eval_csv(f"GenImage={eval_csv}").name == "GenImage"
    blurred = tmp_path / "blur.csv"
    blurred.write_text(TABLE.replace(",,\n", ",,2\n"))
    assert read_eval_csv(str(blurred)).perturbation == "Gaussian blur sigma=2"
    bad = tmp_path / "scores.csv"
    bad.write_text("path,subset,label,fake_probability,error\nx.png,a,1,0.3,\n")
    with pytest.raises(TrainError, match="not an evaluate --csv table"):
        read_eval_csv(str(bad))
    bad.write_text(TABLE.replace("0.850000", "85.0"))
    with pytest.raises(TrainError, match="outside 0-1"):
        read_eval_csv(str(bad))


def test_card_metadata_round_trip(tiny_checkpoint, eval_csv, tmp_path):
    from huggingface_hub import ModelCard

    table = read_eval_csv(str(eval_csv))
    text = card_text(tiny_checkpoint, "lab/dgs-tiny", [table], "apache-2.0")
    card = ModelCard(text)  # the hub's own parser accepts the metadata
    assert card.data.license == "apache-2.0" and card.data.library_name == "dgs-desktop"
    results = {(r.dataset_name, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert results == {("aigibench", "accuracy"): 92.5, ("aigibench", "average_precision"): 98.4}
    assert card.data.to_dict()["dgs_desktop"]["checkpoint_sha256"] == tiny_checkpoint.sha256
    (tmp_path / "README.md").write_text(text)
    [evaluation] = card_metrics(tmp_path)
    assert evaluation.name == "aigibench"
    assert [r["subset"] for r in evaluation.rows] == ["ProGAN", "SD14"]
    assert evaluation.rows[0] == table.rows[0]
    assert evaluation.headline == table.paper_table
    assert "| SD14 | 40 | 20 | 90.0 | 92.5 | 85.0 | 97.0 |" in text
    assert "test-tiny" in text and "Intended use" in text and "Limitations" in text


def test_card_metrics_from_strangers(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("---\nmodel-index:\n- name: x\n  results:\n  - task: {type: image-classification}\n"
                      "    dataset: {name: GenImage, type: genimage}\n    metrics:\n"
                      "    - {type: accuracy, value: 97.6}\n    - {type: average_precision, value: .nan}\n---\n")
    [evaluation] = card_metrics(readme)
    assert evaluation.name == "GenImage" and math.isclose(evaluation.mean["acc"], 0.976)
    assert evaluation.mean["ap"] is None
    readme.write_text("---\ndgs_desktop:\n  evaluations:\n  - name: x\n    rows:\n"
                      "    - {subset: a, acc: 7.5, ap: .inf, n_real: -3, r_acc: 0.5}\n    - just text\n---\n")
    [evaluation] = card_metrics(readme)
    assert evaluation.rows == [{"subset": "a", "n_real": None, "n_fake": None, "acc": None, "r_acc": 0.5,
                                "f_acc": None, "ap": None}]
    for text in ("no front matter", "---\n: : [unclosed\n---\n", "---\n!!python/object:os.system ls\n---\n",
                 "---\n- a list\n---\n"):
        readme.write_text(text)
        assert card_metrics(readme) == []
    readme.write_text("---\nlicense: mit\n---\n" + "x" * (2 << 20))
    assert card_metrics(readme) == []
    assert card_metrics(tmp_path / "missing") == []


RUNNER = r"""
import json, sys
steps = json.loads(sys.argv[1])
for step in steps:
    out = {"step": step["do"]}
    try:
        if step["do"] == "publish":
            from trainer.publish import publish
            r = publish(step["checkpoint"], step["repo"], revision=step.get("revision"),
                        private=step.get("private", False), eval_csvs=step.get("eval", []))
            out.update(ok=True, commit=r.commit, spec=r.spec, files=r.files, revision=r.revision)
        elif step["do"] == "download":
            from dgs_desktop.detector.hub import download_checkpoint
            from dgs_desktop.detector.modelcard import hub_card_metrics
            c = download_checkpoint(step["spec"])
            metrics = hub_card_metrics(step["spec"])
            out.update(ok=True, directory=str(c.directory), sha=c.sha256,
                       headline=[m.headline for m in metrics], names=[m.name for m in metrics])
    except Exception as exc:
        out.update(ok=False, error=str(exc), error_type=type(exc).__name__)
    print("RESULT " + json.dumps(out), flush=True)
"""


def _run(steps, endpoint: str, home: Path, token: str | None = "hf_fake_write_token") -> list[dict]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_HUB_OFFLINE="0", HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1",
               PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""))
    if token:
        env["HF_TOKEN"] = token
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(steps)], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=180)
    results = [json.loads(line[len("RESULT "):]) for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and len(results) == len(steps), proc.stdout[-2000:] + proc.stderr[-4000:]
    return results


def _scores(directory) -> list[float]:
    import torch

    from dgs_desktop.detector.checkpoint import load_detector

    torch.manual_seed(0)
    images = torch.randn(4, 3, 224, 224)
    with torch.no_grad():
        return torch.sigmoid(load_detector(read_checkpoint(directory))(images)).tolist()


def test_publish_then_download_scores_identically(tiny_checkpoint, eval_csv, tmp_path):
    from fakehub import FakeHub

    folder = tmp_path / "ckpt"
    shutil.copytree(tiny_checkpoint.directory, folder)
    (folder / "private-notes.txt").write_text("not for the hub")
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    home = tmp_path / "hf_home"
    with FakeHub(lifetime=170) as hub:
        no_token = _run([{"do": "publish", "checkpoint": str(folder), "repo": "lab/dgs-tiny"}], hub.endpoint, home,
                        token=None)[0]
        published, again, branch, fetched, fetched_branch = _run([
            {"do": "publish", "checkpoint": str(folder), "repo": "lab/dgs-tiny", "eval": [str(eval_csv)]},
            {"do": "publish", "checkpoint": str(folder), "repo": "lab/dgs-tiny", "eval": [str(eval_csv)]},
            {"do": "publish", "checkpoint": str(folder), "repo": "lab/dgs-tiny", "revision": "experiment",
             "private": True},
            {"do": "download", "spec": "hf:lab/dgs-tiny"},
            {"do": "download", "spec": "hf:lab/dgs-tiny@experiment"},
        ], hub.endpoint, home)
        on_main = hub.files("lab/dgs-tiny")
        uploads = hub.requests("PUT", "/_lfs/")
        commits = hub.requests("POST", "/commit/")

    assert not no_token["ok"] and "hf auth login" in no_token["error"], no_token
    assert published["ok"], published
    manifest_files = sorted(tiny_checkpoint.manifest["files"])
    assert set(on_main) == set(manifest_files) | {"dgs_checkpoint.json", "README.md", ".gitattributes"}
    assert "private-notes.txt" not in on_main
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # the folder is left as it was
    # publishing the same again sends nothing and makes no commit; the branch gets a new card only
    assert len(uploads) == len([n for n in manifest_files if n.endswith(".safetensors")])
    assert again["ok"] and branch["ok"], (again, branch)
    assert again["commit"] == published["commit"]
    assert branch["revision"] == "experiment" and len(commits) == 2, commits
    assert fetched["ok"] and fetched_branch["ok"], (fetched, fetched_branch)
    assert fetched["sha"] == tiny_checkpoint.sha256
    assert _scores(fetched["directory"]) == _scores(folder) == _scores(fetched_branch["directory"])
    assert fetched["names"] == ["aigibench"] and fetched["headline"][0]["acc"] == 0.925
    assert fetched_branch["names"] == []  # published without --eval: no tables on that card
