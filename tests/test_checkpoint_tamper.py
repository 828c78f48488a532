"""No code execution from files, no trust in manifests: checkpoint loading never unpickles,
and every kind of tampering is refused with a specific message (CLI: exit 2, one line, no
traceback). The authors' .pth importer is tested elsewhere."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from dgs_desktop.detector.checkpoint import load_detector
from dgs_desktop.detector.manifest import read_checkpoint, sha256_file
from dgs_desktop.detector.resolve import resolve_checkpoint
from dgs_desktop.detector.scorer import load_scorer
from dgs_desktop.errors import CheckpointError


class RunsCode:
    """Pickles to a call of os.mkdir(marker): unpickling it runs code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.mkdir, (self.marker,)


def evil_pth(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": {"w": torch.zeros(2)}, "payload": RunsCode(marker)}, path)
    return path


def test_the_payload_is_live_when_unpickled(tmp_path):
    """Control: the crafted file really calls os.mkdir when unpickled (read from the pickle
    opcodes, never by unpickling it here)."""
    from pickle_inspect import called_globals

    marker = tmp_path / "control-marker"
    called = called_globals(evil_pth(tmp_path / "control.pth", marker))
    assert {"posix.mkdir", "os.mkdir", "nt.mkdir"} & called, called
    assert not marker.exists()


def copy_checkpoint(tiny_checkpoint, tmp_path, name="ckpt") -> Path:
    target = tmp_path / name
    shutil.copytree(tiny_checkpoint.directory, target)
    return target


def edit_manifest(directory: Path, change) -> None:
    path = directory / "dgs_checkpoint.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    path.write_text(json.dumps(manifest))


def rehash(directory: Path, *names: str) -> None:
    def change(manifest):
        for name in names:
            manifest["files"][name] = sha256_file(directory / name)
    edit_manifest(directory, change)


def edit_tensors(directory: Path, name: str, change, fix_hash: bool = True) -> None:
    tensors = load_file(str(directory / name))
    change(tensors)
    save_file(tensors, str(directory / name))
    if fix_hash:
        rehash(directory, name)


# The scan and the window score with load_scorer; training and the reference use load_detector.
LOADERS = {"scorer": load_scorer, "reference": load_detector}


def load(directory, loader: str = "scorer") -> None:
    """What the app does: resolve (verify) then build the network."""
    LOADERS[loader](resolve_checkpoint(str(directory)), "cpu")


# ----------------------------------------------------------------------------- pickles
def test_a_code_running_pth_is_refused_unopened(tmp_path):
    marker = tmp_path / "pwned"
    pth = evil_pth(tmp_path / "model_epoch_step2.pth", marker)
    for attempt in (read_checkpoint, resolve_checkpoint):
        with pytest.raises(CheckpointError, match="never unpickled"):
            attempt(str(pth))
    renamed = tmp_path / "weights-without-suffix"
    shutil.copyfile(pth, renamed)
    with pytest.raises(CheckpointError, match="never unpickled"):
        resolve_checkpoint(str(renamed))
    assert not marker.exists()


def test_a_pickle_disguised_as_a_safetensors_file_is_refused(tiny_checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    directory = copy_checkpoint(tiny_checkpoint, tmp_path)
    evil_pth(directory / "lora.safetensors", marker)
    rehash(directory, "lora.safetensors")  # the attacker also controls the manifest
    with pytest.raises(CheckpointError, match="lora.safetensors is not a readable safetensors file"):
        load(directory)
    assert not marker.exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_loading_a_checkpoint_never_unpickles(tiny_checkpoint, monkeypatch, loader):
    def refuse(*args, **kwargs):
        raise AssertionError("checkpoint loading tried to unpickle")

    for module, name in ((pickle, "load"), (pickle, "loads"), (pickle, "Unpickler"), (torch, "load")):
        monkeypatch.setattr(module, name, refuse)
    detector = LOADERS[loader](read_checkpoint(tiny_checkpoint.directory), "cpu")
    assert detector.head.weight.abs().sum() > 0


# ---------------------------------------------------------------------- tampered manifests
def _wrong_hash(d):
    with open(d / "heads.safetensors", "r+b") as handle:
        handle.seek(-1, os.SEEK_END)
        last = handle.read(1)
        handle.seek(-1, os.SEEK_END)
        handle.write(bytes([last[0] ^ 0x01]))


def _bad_head_shape(d):
    edit_tensors(d, "heads.safetensors", lambda t: t.update({"h_img.weight": torch.ones(1, 5)}))


def _nan(name, key_part):
    def change(tensors):
        key = next(k for k in tensors if key_part in k)
        tensors[key] = tensors[key].clone()
        tensors[key].view(-1)[0] = float("nan")
    return lambda d: edit_tensors(d, name, change)


def _drop_lora_tensor(d):
    edit_tensors(d, "lora.safetensors", lambda t: t.pop(sorted(t)[0]))


def _lora_rank(d):
    edit_manifest(d, lambda m: m["lora"].update(r=4))


def _set(path_value, key, value):
    def change(d):
        edit_manifest(d, lambda m: (m[path_value].update({key: value}) if path_value else m.update({key: value})))
    return change


def _add_file(name):
    def change(d):
        edit_manifest(d, lambda m: m["files"].update({name: "0" * 64}))
    return change


def _raw_manifest(text: bytes):
    return lambda d: (d / "dgs_checkpoint.json").write_bytes(text)


def _int_head(d):
    edit_tensors(d, "heads.safetensors", lambda t: t.update({"h_img.bias": torch.zeros(1, dtype=torch.int32)}))


def _base_outside(d):
    def change(m):
        m["base_weights"]["file"] = "../base_visual.safetensors"
        m["files"]["../base_visual.safetensors"] = m["files"].pop("base_visual.safetensors")
    edit_manifest(d, change)


TAMPERING = {
    "wrong-hash": (_wrong_hash, "heads.safetensors is corrupt or was modified"),
    "missing-file": (lambda d: (d / "lora.safetensors").unlink(), "lora.safetensors is missing"),
    "future-format-version": (_set(None, "format_version", 3), "unsupported checkpoint format version 3"),
    "not-our-format": (_set(None, "format", "something-else"), "wrong 'format' field"),
    "head-shape": (_bad_head_shape, "h_img.weight has shape (1, 5)"),
    "lora-rank-vs-tensors": (_lora_rank, "do not fit the test-tiny architecture"),
    "lora-tensor-missing": (_drop_lora_tensor, "LoRA weights are missing"),
    "nan-head": (_nan("heads.safetensors", "h_img.weight"), "non-finite values (NaN/inf)"),
    "nan-lora": (_nan("lora.safetensors", "lora_B"), "non-finite values (NaN/inf)"),
    "nan-base": (_nan("base_visual.safetensors", "proj"), "non-finite values (NaN/inf)"),
    "int-tensor": (_int_head, "non-floating-point tensor"),
    "path-parent": (_add_file("../x"), "unsafe file path: '../x'"),
    "path-absolute": (_add_file("/etc/passwd"), "unsafe file path: '/etc/passwd'"),
    "path-subfolder": (_add_file("sub/../../x"), "unsafe file path"),
    "base-file-unlisted": (_set("base_weights", "file", "other.safetensors"), "does not list that file"),
    "base-file-outside": (_base_outside, "unsafe file path: '../base_visual.safetensors'"),
    "architecture-local-dir": (_set(None, "architecture", "local-dir:/tmp/model"), "not a plain model name"),
    "architecture-hf-hub": (_set(None, "architecture", "hf-hub:evil/model"), "not a plain model name"),
    "base-id-is-a-path": (lambda d: edit_manifest(d, lambda m: m.update(
        architecture="ViT-B-16", base_weights={"bundled": False, "id": "/tmp/evil.pth"})),
        "paths and files are refused"),
    "huge-lora-rank": (_set("lora", "r", 10 ** 9), "rank r=1000000000"),
    "lora-targets": (_set("lora", "targets", ["out_proj", "__class__"]), "targets"),
    "files-not-a-map": (_set(None, "files", ["lora.safetensors"]), "must map file names"),
    "hash-not-hex": (lambda d: edit_manifest(d, lambda m: m["files"].update({"lora.safetensors": "x"})),
                     "no valid sha256"),
    "threshold-bool": (_set(None, "threshold", True), "not a probability"),
    "invalid-json": (_raw_manifest(b"{\"format\": "), "is not valid JSON"),
    "nan-in-json": (_raw_manifest(b'{"threshold": NaN}'), "is not valid JSON"),
    "deeply-nested-json": (_raw_manifest(b"[" * 100_000 + b"]" * 100_000), "is not valid JSON"),
    "huge-manifest": (_raw_manifest(b" " * (2 << 20)), "too large"),
    # finite numbers that cannot give a finite score (a NaN probability must never become a verdict)
    "huge-alpha": (_set("lora", "alpha", 1e308), "alpha=1e+308"),
    "overflowing-head": (lambda d: edit_tensors(d, "heads.safetensors", lambda t: t.update(
        {"h_img.weight": torch.full_like(t["h_img.weight"], 3e38)})), "logit overflows"),
    "overflowing-lora": (lambda d: edit_tensors(d, "lora.safetensors", lambda t: t.update(
        {k: torch.full_like(v, 3e30) for k, v in t.items()})), "overflows (scale x B A is not finite)"),
    # the backbone record, from which alone the network is rebuilt
    "backbone-missing": (lambda d: edit_manifest(d, lambda m: m.pop("backbone")), "no valid 'backbone' record"),
    "backbone-name-path": (_set("backbone", "model_name", "../evil"), "not a plain model name"),
    "backbone-tag-file": (_set("backbone", "pretrained", "weights.pt"), "not a plain name"),
    "backbone-huge-layers": (lambda d: edit_manifest(d, lambda m: m["backbone"]["config"]["vision_cfg"].update(
        layers=10 ** 6)), "vision_cfg.layers=1000000 is out of range"),
    "backbone-gelu-not-bool": (lambda d: edit_manifest(d, lambda m: m["backbone"]["config"].update(
        quick_gelu="yes")), "'quick_gelu' must be true or false"),
    "backbone-unbuildable": (lambda d: edit_manifest(d, lambda m: m["backbone"]["config"]["vision_cfg"].update(
        no_such_option=1)), "cannot be rebuilt"),
}


@pytest.mark.parametrize("loader", sorted(LOADERS))
@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_tampered_checkpoint_is_refused_with_a_specific_message(case, loader, tiny_checkpoint, tmp_path):
    tamper, message = TAMPERING[case]
    directory = copy_checkpoint(tiny_checkpoint, tmp_path)
    tamper(directory)
    with pytest.raises(CheckpointError) as caught:
        load(directory, loader)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_cli_refuses_tampered_checkpoints_with_one_line_and_exit_2(tiny_checkpoint, tmp_path, capsys):
    from dgs_desktop.cli import main

    image = tmp_path / "image.png"
    __import__("imagegen").noise_rgb(64, 64).save(image)
    for case in ("wrong-hash", "head-shape", "nan-lora", "path-parent", "future-format-version"):
        tamper, message = TAMPERING[case]
        directory = copy_checkpoint(tiny_checkpoint, tmp_path, f"ckpt-{case}")
        tamper(directory)
        out = tmp_path / f"{case}.csv"
        code = main(["scan", str(image), "--checkpoint", str(directory), "--csv", str(out), "--no-progress"])
        err = capsys.readouterr().err
        assert code == 2, case
        assert err.count("\n") == 1 and err.startswith("dgs-desktop: error:") and message in err, err
        assert "Traceback" not in err


def test_cli_subprocess_refuses_a_pth_and_a_nan_checkpoint(tiny_checkpoint, tmp_path):
    marker = tmp_path / "pwned"
    pth = evil_pth(tmp_path / "model_epoch_step2.pth", marker)
    nan_dir = copy_checkpoint(tiny_checkpoint, tmp_path, "nan")
    TAMPERING["nan-head"][0](nan_dir)
    image = tmp_path / "image.png"
    __import__("imagegen").noise_rgb(64, 64).save(image)
    runs = {}
    for name, checkpoint in (("pth", pth), ("nan", nan_dir)):  # both at once: start-up dominates
        runs[name] = subprocess.Popen(
            [sys.executable, "-m", "dgs_desktop", "scan", str(image), "--checkpoint", str(checkpoint), "--csv",
             str(tmp_path / f"{name}.csv"), "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True)
    expected = {"pth": "never unpickled", "nan": "non-finite values"}
    for name, proc in runs.items():
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 2, err
        assert "Traceback" not in err and err.count("\n") == 1 and expected[name] in err, err
    assert not marker.exists()
