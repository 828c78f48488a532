"""dgs-desktop-train: gradient path, metrics, data, captions, end to end, resume, torchrun."""

import csv
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_trainer_support import make_tree

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("tiny_training_env")


def tiny_detector(dropout=0.0):
    from dgs_desktop.detector.model import LoraSettings, build_detector

    torch.manual_seed(0)
    detector = build_detector("test-tiny", None, LoraSettings(dropout=dropout), with_text=True)
    with torch.no_grad():
        for name, p in detector.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    return detector


def lora_params(detector):
    return [p for n, p in detector.visual.named_parameters() if p.requires_grad]


# ------------------------------------------------------------------- gradient path
@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_lora_gradients_equal_vjp_with_g_final(mode):
    from torch import nn

    from trainer.step import SurgeryConfig, dgs_backward

    detector = tiny_detector()
    detector.train()
    torch.manual_seed(1)
    x = torch.randn(4, 3, 224, 224)
    y = torch.tensor([0.0, 1.0, 1.0, 0.0])
    t, f_teacher = torch.randn(4, 32), torch.randn(4, 32)
    h_text, h_teacher = nn.Linear(32, 1), nn.Linear(32, 1)
    h_teacher.requires_grad_(False)
    cfg = SurgeryConfig(lam=0.2, mode=mode)

    f = detector.features(x)
    g_final, _ = dgs_backward(f, t, f_teacher, y, detector.head, h_text, h_teacher, cfg)
    params = lora_params(detector)
    hooked = [p.grad.clone() for p in params]
    assert any(g.abs().sum() > 0 for g in hooked)

    f2 = detector.features(x)
    vjp = torch.autograd.grad(f2, params, grad_outputs=g_final)
    for a, b in zip(hooked, vjp):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    # and the heads got exactly dL_img/dW and dL_text/dW
    from trainer.step import bce

    w_img = torch.autograd.grad(bce(detector.head(f2.detach()), y), detector.head.weight)[0]
    torch.testing.assert_close(detector.head.weight.grad, w_img)
    assert h_teacher.weight.grad is None


@pytest.mark.parametrize("mode", ["paper", "reference"])
def test_grad_scaler_and_accumulation_scale_everything(mode):
    from torch import nn

    from trainer.step import SurgeryConfig, dgs_backward

    detector = tiny_detector()
    x = torch.randn(2, 3, 224, 224)
    y = torch.tensor([0.0, 1.0])
    t, f_teacher = torch.randn(2, 32), torch.randn(2, 32)
    h_text, h_teacher = nn.Linear(32, 1), nn.Linear(32, 1)
    cfg = SurgeryConfig(lam=0.5, mode=mode)

    def grads(scale, micro):
        detector.zero_grad(set_to_none=True)
        h_text.zero_grad(set_to_none=True)
        dgs_backward(detector.features(x), t, f_teacher, y, detector.head, h_text, h_teacher, cfg,
                     loss_scale=scale, micro_batches=micro, global_batch=2)
        return [p.grad.clone() for p in lora_params(detector) + list(detector.head.parameters())]

    plain, scaled = grads(1.0, 1), grads(512.0, 4)
    for a, b in zip(plain, scaled):
        torch.testing.assert_close(b / 128.0, a, rtol=1e-4, atol=1e-8)


def test_no_surgery_equals_plain_fine_tuning():
    """Both ablations off: LoRA gradients are those of L_img alone (plain LoRA fine-tuning)."""
    from torch import nn

    from trainer.step import SurgeryConfig, bce, dgs_backward

    detector = tiny_detector()
    x = torch.randn(3, 3, 224, 224)
    y = torch.tensor([0.0, 1.0, 1.0])
    cfg = SurgeryConfig(lam=0.2, orthogonal_suppression=False, prior_alignment=False)
    dgs_backward(detector.features(x), torch.randn(3, 32), None, y, detector.head, nn.Linear(32, 1), None, cfg)
    got = [p.grad.clone() for p in lora_params(detector)]
    detector.zero_grad(set_to_none=True)
    bce(detector(x).unsqueeze(-1), y).backward()
    for a, p in zip(got, lora_params(detector)):
        torch.testing.assert_close(a, p.grad, rtol=1e-5, atol=1e-7)


# -------------------------------------------------------------------- configuration
def test_train_options_are_generated_from_the_config_dataclass():
    import argparse
    from dataclasses import fields

    from dgs_desktop.detector.backbone import DEFAULT_ARCH
    from trainer.captions import CAPTIONER
    from trainer.config import TrainConfig, add_arguments, from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    parsed = from_args(parser.parse_args(["--data", "d", "--out", "o"]))
    assert parsed == TrainConfig(data="d", out="o")  # every default comes from the dataclass
    assert (parsed.arch, parsed.captioner) == (DEFAULT_ARCH, CAPTIONER)
    dests = {a.dest for a in parser._actions} - {"help"}
    assert dests == {f.name for f in fields(TrainConfig)}
    switched = from_args(parser.parse_args(["--data", "d", "--out", "o", "--no-prior-alignment", "--resume",
                                            "--no-progress", "--pretrained", "none", "--lora-r", "4"]))
    assert (switched.prior_alignment, switched.resume, switched.progress) == (False, True, False)
    assert switched.pretrained is None and switched.lora_settings().r == 4
    with pytest.raises(SystemExit):
        parser.parse_args(["--data", "d", "--out", "o", "--lr", "0"])


@pytest.mark.slow
def test_reference_step_is_the_same_for_processes_and_accumulation(tmp_path):
    """One step on a global batch of 8: 1 process, --accum 2, and 2 gloo processes give the
    same LoRA gradient (lambda/B with the global B); the old per-micro-batch B does not."""
    from safetensors.torch import load_file
    from test_trainer_support import one_step_gradients

    single = one_step_gradients(accum=1)
    lora = [k for k in single if "lora_" in k]
    assert lora and all(single[k].abs().sum() > 0 for k in lora)

    def same(other, atol=1e-7):
        assert other.keys() == single.keys()
        for key in single:
            torch.testing.assert_close(other[key], single[key], rtol=1e-5, atol=atol)

    same(one_step_gradients(accum=2))
    with pytest.raises(AssertionError):
        same(one_step_gradients(accum=2, global_batch_for_lambda=None))  # B = micro-batch: lambda x 2
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    out = tmp_path / "grads.safetensors"
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
         str(ROOT / "tests" / "test_trainer_support.py"), str(out), "1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    same(load_file(str(out)))


# ------------------------------------------------------------------------- metrics
def test_average_precision_hand_computed():
    from trainer.metrics import average_precision, detection_metrics

    # thresholds .9 (P=1, R=1/3), .8 (1/2, 1/3), .7 (2/3, 2/3), .6 (2/4, 2/3), .3 (3/5, 1)
    assert average_precision([1, 0, 1, 0, 1], [0.9, 0.8, 0.7, 0.6, 0.3]) == pytest.approx(1 / 3 + 2 / 9 + 1 / 5)
    # tied scores form one threshold: (.5: P=1/2, R=1/2), (.2: P=2/3, R=1)
    assert average_precision([1, 0, 1], [0.5, 0.5, 0.2]) == pytest.approx(0.25 + 0.5 * 2 / 3)
    assert average_precision([0, 1], [0.1, 0.9]) == 1.0
    m = detection_metrics([0, 0, 1, 1], [0.2, 0.7, 0.9, 0.5])
    assert (m["acc"], m["r_acc"], m["f_acc"]) == (0.5, 0.5, 0.5)  # 0.5 is not > 0.5: real


# ---------------------------------------------------------------------------- data
def test_discovery_subsets_and_errors(tmp_path):
    from trainer.data import discover
    from trainer.errors import TrainError

    root = make_tree(tmp_path / "train", subsets=("car", "gan/sd", "gan/xl"), per_class=2, size=64)
    data = discover(root)
    assert data.counts() == {"car": {"real": 2, "fake": 2}, "gan": {"real": 4, "fake": 4}}
    assert data.counts("category") == {"car": {"real": 2, "fake": 2}, "gan/sd": {"real": 2, "fake": 2},
                                       "gan/xl": {"real": 2, "fake": 2}}
    flat = make_tree(tmp_path / "flat", subsets=(".",), per_class=1, size=64)
    assert discover(flat).counts() == {"flat": {"real": 1, "fake": 1}}  # named after the root
    genimage = tmp_path / "genimage"
    for leaf in ("sdv4/val/nature", "sdv4/val/ai", "sdv4/train/ai"):
        make_tree(genimage / leaf, subsets=(".",), per_class=1, size=64)
        for cls in ("0_real", "1_fake"):  # move the generated images into the GenImage leaf
            for image in (genimage / leaf / cls).iterdir():
                image.rename(genimage / leaf / f"{cls}_{image.name}")
            (genimage / leaf / cls).rmdir()
    native = discover(genimage, require_both=False)
    assert native.counts() == {"sdv4": {"real": 2, "fake": 4}}
    assert sorted(native.counts("category")) == ["sdv4/train", "sdv4/val"]
    (tmp_path / "none").mkdir()
    with pytest.raises(TrainError, match="no 0_real"):
        discover(tmp_path / "none")
    with pytest.raises(TrainError, match="sdv4/train .no real folder"):
        discover(genimage)  # training needs both classes in every category
    (root / "cat" / "0_real").mkdir(parents=True)
    with pytest.raises(TrainError, match="hold no images"):
        discover(root)


def test_flip_mirrors_the_finished_mosaic_and_views_differ(tmp_path):
    """The authors flip after PatchSelectionTransform: with a width that is not a multiple of
    32 this differs from selecting patches on a flipped image."""
    import numpy as np
    from PIL import Image

    from dgs_desktop.detector.patches import select_patches
    from trainer.data import load_rgb, training_mosaic, view_params

    rng = np.random.default_rng(3)
    path = tmp_path / "odd.png"
    Image.fromarray(rng.integers(0, 256, (230, 250, 3), dtype=np.uint8)).save(path)
    rgb = load_rgb(path)
    view = next(v for v in range(50) if view_params(0, 7, v)[0])
    shuffle_seed = view_params(0, 7, view)[1]
    mosaic = training_mosaic(path, 0, 7, view)
    np.testing.assert_array_equal(mosaic, select_patches(rgb, seed=shuffle_seed).mosaic[:, ::-1])
    assert not np.array_equal(mosaic, select_patches(np.ascontiguousarray(rgb[:, ::-1]), seed=shuffle_seed).mosaic)
    # each view is a fresh shuffle (stage-1 probe epoch e and stage-2 epoch e show view e)
    views = [training_mosaic(path, 0, 7, v) for v in range(3)]
    assert not np.array_equal(views[0], views[1]) and not np.array_equal(views[1], views[2])


def test_probe_epoch_e_trains_on_view_e():
    from torch import nn

    from trainer.config import TrainConfig
    from trainer.distributed import Dist
    from trainer.rundir import MetricsLog
    from trainer.runtime import Runtime
    from trainer.stage1 import shared_views, train_probe

    config = TrainConfig(data="-", out="-", batch_size=4, probe_epochs=3, epochs=2)
    runtime = Runtime(torch.device("cpu"), None, Dist(), False)
    labels = torch.tensor([0.0, 1.0] * 4)
    asked = []

    def features_of(view):
        asked.append(view)
        return torch.randn(8, 5, generator=torch.Generator().manual_seed(view))

    steps = train_probe(nn.Linear(5, 1), features_of, labels, config, runtime, MetricsLog(Path("-"), False), 0.0)
    assert asked == [0, 1, 2] and steps == 6
    assert shared_views(config) == [0, 1]  # stage-2 epochs 0 and 1 reuse the probe's views
    from dataclasses import replace

    assert shared_views(replace(config, feature_cache=False)) == []


def test_captions_cache_and_authors_json(tmp_path):
    from trainer.captions import CaptionCache, resolve_captions
    from trainer.data import discover

    root = make_tree(tmp_path / "train", subsets=("car",), per_class=2, size=64)
    samples = discover(root).samples
    shas = [f"{i:064x}" for i in range(len(samples))]
    caps, info = resolve_captions(samples, shas, captioner="test-tiny", captions_file=None, device="cpu",
                                  batch_size=3, progress=False)
    assert info["new"] == 4 and all(isinstance(c, str) for c in caps)
    assert set(json.loads(Path(info["cache_file"]).read_text())) == set(shas)
    _, again = resolve_captions(samples, shas, captioner="test-tiny", captions_file=None, device="cpu",
                                progress=False)
    assert again["new"] == 0 and again["cached"] == 4
    assert CaptionCache.for_captioner("test-tiny").get(shas[0]) == caps[0]

    table = {f"/data/AIGIBench/train/{s.rel}": f"caption {i}" for i, s in enumerate(samples)}
    path = tmp_path / "train_text.json"
    path.write_text(json.dumps(table))
    caps, info = resolve_captions(samples, shas, captioner="x", captions_file=str(path), device="cpu")
    assert caps == [f"caption {i}" for i in range(len(samples))] and info["source"] == "file"


def test_paper_table_reproduces_table_1():
    """mAcc. of the paper's Table 1 = mean of the R.Acc. column and the 17 F.Acc. columns."""
    from trainer.metrics import mean_metrics, paper_table_metrics

    def table(r_acc, f_accs):
        return {f"g{i}": {"n_real": 1, "n_fake": 1, "acc": 0.5, "r_acc": r_acc / 100, "f_acc": f / 100, "ap": 0.9}
                for i, f in enumerate(f_accs)}

    ours = table(95.3, [100.0, 100.0, 100.0, 99.5, 99.8, 100.0, 100.0, 84.6, 96.7, 100.0, 99.9, 95.2, 99.0, 88.0,
                        100.0, 99.7, 99.6])
    univfd = table(92.3, [98.9, 90.5, 79.2, 55.7, 48.7, 91.1, 96.9, 92.8, 26.9, 96.3, 96.0, 12.7, 75.6, 61.2, 84.7,
                          45.6, 62.3])
    assert round(100 * paper_table_metrics(ours)["acc"], 1) == 97.6
    # the table's columns are rounded to 0.1, so their mean can differ from the printed 72.7 by < 0.1
    assert 100 * paper_table_metrics(univfd)["acc"] == pytest.approx(72.7, abs=0.1)
    assert paper_table_metrics(ours)["ap"] == pytest.approx(0.9)
    assert mean_metrics(ours)["acc"] == pytest.approx(0.5) and mean_metrics(ours)["n_real"] == 17


def test_evaluate_one_row_per_top_level_folder(tiny_checkpoint, tmp_path, capsys):
    """Subsets pool every category below a top-level folder (GenImage's nature/ai too); the CSV
    holds the subsets, `mean` and `paper_table`, and agrees with the per-image scores."""
    import shutil

    from trainer.cli import main
    from trainer.metrics import detection_metrics

    root = tmp_path / "test"
    make_tree(root / "progan", subsets=("car", "cat"), per_class=3, size=64, seed=1)
    make_tree(tmp_path / "g", subsets=(".",), per_class=4, size=64, seed=2)
    for cls, leaf in (("0_real", "nature"), ("1_fake", "ai")):
        shutil.copytree(tmp_path / "g" / cls, root / "sdv4" / "val" / leaf)
    table, scores = tmp_path / "table.csv", tmp_path / "scores.csv"
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint.directory), "--data", str(root), "--no-progress", "--workers",
            "1", "--device", "cpu", "--csv", str(table), "--scores", str(scores)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = list(csv.DictReader(table.open()))
    assert [r["subset"] for r in rows] == ["progan", "sdv4", "mean", "paper_table"]
    assert [(r["n_real"], r["n_fake"]) for r in rows] == [("6", "6"), ("4", "4"), ("10", "10"), ("10", "10")]
    per_image = list(csv.DictReader(scores.open()))
    assert len(per_image) == 20 and {r["category"] for r in per_image} == {"progan/car", "progan/cat", "sdv4/val"}
    for row in rows[:2]:
        mine = [r for r in per_image if r["subset"] == row["subset"]]
        expected = detection_metrics([int(r["label"]) for r in mine], [float(r["fake_probability"]) for r in mine])
        for key in ("acc", "r_acc", "f_acc", "ap"):
            assert float(row[key]) == pytest.approx(expected[key], abs=1e-6)
    r_accs, f_accs = [float(r["r_acc"]) for r in rows[:2]], [float(r["f_acc"]) for r in rows[:2]]
    assert float(rows[2]["acc"]) == pytest.approx((float(rows[0]["acc"]) + float(rows[1]["acc"])) / 2, abs=1e-6)
    paper_acc = (sum(r_accs) / 2 + sum(f_accs)) / 3
    assert float(rows[3]["acc"]) == pytest.approx(paper_acc, abs=1e-6) and rows[3]["f_acc"] == ""
    assert re.search(r"^\(0 progan      \) acc: [\d.]+; ap: [\d.]+; r_acc: [\d.]+; f_acc: [\d.]+$", printed, re.M)
    assert f"paper table: mAcc. {100 * paper_acc:.1f}" in printed

    flat = tmp_path / "just_one"
    shutil.copytree(tmp_path / "g", flat)
    assert main(args[:4] + [str(flat)] + args[5:10] + ["--csv", str(table)]) == 0
    assert [r["subset"] for r in csv.DictReader(table.open())] == ["just_one", "mean", "paper_table"]


# ---------------------------------------------------------------------- end to end
TRAIN_ARGS = ["--arch", "test-tiny", "--captioner", "test-tiny", "--batch-size", "8", "--workers", "0",
              "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def trees(tmp_path_factory):
    base = tmp_path_factory.mktemp("trees")
    train = make_tree(base / "train", per_class=16, seed=0)
    test = make_tree(base / "test", per_class=8, seed=5)
    broken = train / "cats" / "0_real" / "broken.png"
    broken.write_bytes(b"\x89PNG not really")
    return train, test


@pytest.mark.slow
def test_end_to_end_train_evaluate_scan(trees, tmp_path, capsys):
    from dgs_desktop.detector.manifest import read_checkpoint
    from trainer.cli import main

    train, test = trees
    out = tmp_path / "ckpt"
    rc = main(["--data", str(train), "--out", str(out), "--lr", "1e-2", "--probe-lr", "2e-2", "--epochs", "10",
               "--val", str(test)] + TRAIN_ARGS)
    err = capsys.readouterr().err
    assert rc == 0, err
    assert "broken.png" in err and "unreadable" in err
    ckpt = read_checkpoint(out)
    prov = ckpt.manifest["provenance"]
    assert prov["counts"] == {"cats": {"real": 16, "fake": 16}, "gan/sd": {"real": 16, "fake": 16}}  # categories
    assert prov["surgery"] == {"lambda": 0.2, "mode": "reference", "orthogonal_suppression": True,
                               "prior_alignment": True}
    assert prov["teacher_features"]["stage1_cache_used_in_stage2"] is True
    # stage-2 epochs 1-3 show the probe's views 0-2 (cached); epochs 4-10 need the teacher forward
    assert prov["teacher_features"]["cached_images"] == 3 * 64
    assert prov["teacher_features"]["teacher_forward_images"] == 7 * 64
    assert prov["seed"] == 0 and "torch" in prov["versions"] and "val" in prov["final_metrics"]
    assert sorted(h for h in ckpt.manifest["head"]["heads"]) == ["h_img", "h_img_T", "h_text"]
    run = Path(str(out) + ".run")
    metrics = (run / "metrics.csv").read_text()
    assert metrics.count("\ndgs,") == 80
    assert metrics.count("\nval,") == 10  # --val after every epoch
    assert metrics.count("\nprobe,") == 3 * 8
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rc = main(["evaluate", "--checkpoint", str(out), "--data", str(test), "--no-progress", "--workers", "1",
               "--device", "cpu", "--csv", str(tmp_path / "m.csv")])
    printed = capsys.readouterr().out
    assert rc == 0
    mean = re.search(r"^\(2 Mean      \) acc: ([\d.]+); ap: ([\d.]+); r_acc: [\d.]+; f_acc: [\d.]+$", printed, re.M)
    assert mean and float(mean[1]) >= 80.0 and float(mean[2]) >= 90.0, printed
    assert re.search(r"^\(1 gan         \) acc: ", printed, re.M) and "paper table: mAcc." in printed
    assert (tmp_path / "m.csv").read_text().startswith("subset,n_real,n_fake,acc,r_acc,f_acc,ap,")

    rc = main(["evaluate", "--checkpoint", str(out), "--data", str(test), "--no-progress", "--workers", "1",
               "--device", "cpu", "--jpeg-quality", "90", "--blur-sigma", "0.5"])
    assert rc == 0 and "JPEG quality=90" in capsys.readouterr().out

    from dgs_desktop.cli import main as app_main

    csv_path = tmp_path / "scan.csv"
    assert app_main(["scan", str(test), "--checkpoint", str(out), "--csv", str(csv_path), "--device", "cpu"]) == 0
    rows = csv_path.read_text().strip().splitlines()
    assert len(rows) == 1 + 32 and all(",ok," in r for r in rows[1:])


@pytest.mark.slow
def test_interrupt_then_resume_equals_uninterrupted(trees, tmp_path, monkeypatch):
    from safetensors.torch import load_file

    import trainer.stage2 as stage2
    from trainer.cli import main

    train, _ = trees
    args = ["--data", str(train), "--epochs", "2", "--lr", "1e-3", "--save-every", "3", "--seed", "7"] + TRAIN_ARGS
    assert main(args + ["--out", str(tmp_path / "a")]) == 0

    real_backward, calls = stage2.dgs_backward, []

    def interrupting(*a, **k):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of step 5
        return real_backward(*a, **k)

    monkeypatch.setattr(stage2, "dgs_backward", interrupting)
    assert main(args + ["--out", str(tmp_path / "b")]) == 130
    assert not (tmp_path / "b").exists()
    monkeypatch.setattr(stage2, "dgs_backward", real_backward)
    assert main(args + ["--out", str(tmp_path / "b")]) == 2  # refuses to overwrite without --resume
    assert main(args + ["--out", str(tmp_path / "b"), "--resume"]) == 0
    for name in ("lora.safetensors", "heads.safetensors"):
        a, b = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
        assert a.keys() == b.keys()
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)
    rows_a = (tmp_path / "a.run" / "metrics.csv").read_text().splitlines()
    rows_b = (tmp_path / "b.run" / "metrics.csv").read_text().splitlines()
    assert len(rows_a) == len(rows_b)


def test_ablation_run_and_user_errors(trees, tmp_path, capsys):
    from dgs_desktop.detector.manifest import read_checkpoint
    from trainer.cli import main

    train, _ = trees
    out = tmp_path / "abl"
    assert main(["--data", str(train), "--out", str(out), "--max-steps", "2", "--surgery", "reference",
                 "--no-prior-alignment"] + TRAIN_ARGS) == 0
    prov = read_checkpoint(out).manifest["provenance"]
    assert prov["surgery"]["prior_alignment"] is False and prov["surgery"]["mode"] == "reference"
    assert prov["teacher_features"]["teacher_forward_images"] == 0
    capsys.readouterr()
    assert main(["--data", str(tmp_path / "missing"), "--out", str(tmp_path / "x")] + TRAIN_ARGS) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "Traceback" not in err
    assert main(["evaluate", "--checkpoint", str(tmp_path / "nope"), "--data", str(train)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_run_dir_with_files_we_did_not_write_is_refused(trees, tmp_path, capsys):
    """--run-dir never overwrites a user's metrics.csv or loss.png, nor writes beside their files."""
    from trainer.cli import main

    train, _ = trees
    quick = ["--data", str(train), "--max-steps", "1", "--probe-epochs", "1"] + TRAIN_ARGS
    users = tmp_path / "analysis"
    users.mkdir()
    (users / "metrics.csv").write_text("my,own\n1,2\n")
    (users / "loss.png").write_bytes(b"my plot")
    assert main(quick + ["--out", str(tmp_path / "a"), "--run-dir", str(users)]) == 2
    assert "did not write" in capsys.readouterr().err
    assert sorted(p.name for p in users.iterdir()) == ["loss.png", "metrics.csv"]
    assert (users / "metrics.csv").read_text() == "my,own\n1,2\n" and (users / "loss.png").read_bytes() == b"my plot"
    assert not (tmp_path / "a").exists()

    (users / "metrics.csv").unlink()
    (users / "loss.png").unlink()
    (users / "notes.txt").write_text("keep me")  # not one of our names
    assert main(quick + ["--out", str(tmp_path / "a"), "--run-dir", str(users)]) == 2
    assert "notes.txt" in capsys.readouterr().err and (users / "notes.txt").read_text() == "keep me"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(quick + ["--out", str(tmp_path / "b"), "--run-dir", str(empty)]) == 0  # an empty folder is fine
    assert {"dgs_run.json", "metrics.csv", "state.pt"} <= {p.name for p in empty.iterdir()}
    (empty / "state.pt").unlink()
    assert main(quick + ["--out", str(tmp_path / "b"), "--run-dir", str(empty)]) == 0  # ours: reused


@pytest.mark.slow
def test_torchrun_two_processes(trees, tmp_path):
    train, _ = trees
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
         "--data", str(train), "--out", str(out), "--max-steps", "3", "--probe-epochs", "1"] + TRAIN_ARGS,
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from dgs_desktop.detector.manifest import read_checkpoint

    manifest = read_checkpoint(out).manifest
    assert manifest["provenance"]["processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ddp")) == ["ddp", "ddp.run"]


@pytest.mark.slow
def test_evaluate_under_torchrun_equals_one_process(trees, tiny_checkpoint, tmp_path):
    """Each process scores a share of the images; the table and every score equal a single
    process's (scores do not depend on batching), and only the first process writes."""
    _, test = trees
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    common = ["evaluate", "--checkpoint", str(tiny_checkpoint.directory), "--data", str(test), "--device", "cpu",
              "--no-progress", "--workers", "1"]
    outputs = {}
    for name, launcher in (("one", [sys.executable, "-m", "trainer"]),
                           ("two", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                                    "--nproc_per_node=2", "-m", "trainer"])):
        table, scores = tmp_path / f"{name}.csv", tmp_path / f"{name}-scores.csv"
        done = subprocess.run(launcher + common + ["--csv", str(table), "--scores", str(scores)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout.count("paper table:") == 1, done.stdout  # one report, from the first process
        outputs[name] = (table.read_text(), scores.read_text())
    assert outputs["two"] == outputs["one"]
    assert outputs["one"][1].count("\n") > 30  # every image of the test tree has a score row
