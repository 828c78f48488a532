"""dgs-desktop-train: gradient path, metrics, data, captions, end to end, resume, torchrun."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_trainer_support import make_tree

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread(monkeypatch, tmp_path):
    # 2 shared cores: one intra-op thread is ~20x faster for these tiny models.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setenv("DGS_DESKTOP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    torch.set_num_threads(threads)


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


def test_grad_scaler_and_accumulation_scale_everything():
    from torch import nn

    from trainer.step import SurgeryConfig, dgs_backward

    detector = tiny_detector()
    x = torch.randn(2, 3, 224, 224)
    y = torch.tensor([0.0, 1.0])
    t, f_teacher = torch.randn(2, 32), torch.randn(2, 32)
    h_text, h_teacher = nn.Linear(32, 1), nn.Linear(32, 1)
    cfg = SurgeryConfig(lam=0.5, mode="paper")

    def grads(scale, micro):
        detector.zero_grad(set_to_none=True)
        h_text.zero_grad(set_to_none=True)
        dgs_backward(detector.features(x), t, f_teacher, y, detector.head, h_text, h_teacher, cfg,
                     loss_scale=scale, micro_batches=micro)
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

    root = make_tree(tmp_path / "train", subsets=("car", "gan/sd"), per_class=2, size=64)
    data = discover(root)
    assert data.counts() == {"car": {"real": 2, "fake": 2}, "gan/sd": {"real": 2, "fake": 2}}
    flat = make_tree(tmp_path / "flat", subsets=(".",), per_class=1, size=64)
    assert set(discover(flat).counts()) == {"."}
    (tmp_path / "none").mkdir()
    with pytest.raises(TrainError, match="no 0_real"):
        discover(tmp_path / "none")
    (root / "cat" / "0_real").mkdir(parents=True)
    with pytest.raises(TrainError, match="hold no images"):
        discover(root)


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


def test_end_to_end_train_evaluate_scan(trees, tmp_path, capsys):
    from dgs_desktop.detector.checkpoint import read_checkpoint
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
    assert prov["counts"] == {"cats": {"real": 16, "fake": 16}, "gan": {"real": 16, "fake": 16}}  # top-level
    assert prov["surgery"] == {"lambda": 0.2, "mode": "paper", "orthogonal_suppression": True,
                               "prior_alignment": True}
    assert prov["teacher_features"]["stage1_cache_used_in_stage2"] is True
    assert prov["teacher_features"]["teacher_forward_images"] > 0  # epochs 2.. see new views
    assert prov["seed"] == 0 and "torch" in prov["versions"] and "val" in prov["final_metrics"]
    assert sorted(h for h in ckpt.manifest["head"]["heads"]) == ["h_img", "h_img_T", "h_text"]
    run = Path(str(out) + ".run")
    assert (run / "metrics.csv").read_text().count("\ndgs,") == 80
    assert (run / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    rc = main(["evaluate", "--checkpoint", str(out), "--data", str(test), "--no-progress", "--workers", "1",
               "--device", "cpu", "--csv", str(tmp_path / "m.csv")])
    printed = capsys.readouterr().out
    assert rc == 0
    mean = [line for line in printed.splitlines() if line.startswith("mean")][0].split()
    acc, ap = float(mean[3]), float(mean[6])
    assert acc >= 80.0 and ap >= 90.0, printed
    assert "gan " in printed and (tmp_path / "m.csv").read_text().startswith("subset,")

    rc = main(["evaluate", "--checkpoint", str(out), "--data", str(test), "--no-progress", "--workers", "1",
               "--device", "cpu", "--jpeg-quality", "90", "--blur-sigma", "0.5"])
    assert rc == 0 and "JPEG quality=90" in capsys.readouterr().out

    from dgs_desktop.cli import main as app_main

    csv_path = tmp_path / "scan.csv"
    assert app_main(["scan", str(test), "--checkpoint", str(out), "--csv", str(csv_path), "--device", "cpu"]) == 0
    rows = csv_path.read_text().strip().splitlines()
    assert len(rows) == 1 + 32 and all(",ok," in r for r in rows[1:])


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
    from dgs_desktop.detector.checkpoint import read_checkpoint
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


def test_torchrun_two_processes(trees, tmp_path):
    train, _ = trees
    out = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "trainer",
         "--data", str(train), "--out", str(out), "--max-steps", "3", "--probe-epochs", "1"] + TRAIN_ARGS,
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    from dgs_desktop.detector.checkpoint import read_checkpoint

    manifest = read_checkpoint(out).manifest
    assert manifest["provenance"]["processes"] == 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("ddp")) == ["ddp", "ddp.run"]
