"""Import of the DGS-Net authors' released weights (`model_epoch_step2.pth`) into a checkpoint.

The file is read ONLY with `torch.load(..., weights_only=True)`: a pickle that would run code or
build anything but tensors and plain containers is refused.

Layout of the authors' file (a `state_dict()` of their `CLIPModel`, OpenAI-CLIP key names):

    clip_model.visual.conv1.weight, .class_embedding, .positional_embedding, .ln_pre.*, .ln_post.*, .proj
    clip_model.visual.transformer.resblocks.N.{ln_1,ln_2,mlp.c_fc,mlp.c_proj}.{weight,bias}
    clip_model.visual.transformer.resblocks.N.attn.{q,k,v}_proj.{weight,bias,w_lora_A,w_lora_B}
    clip_model.visual.transformer.resblocks.N.attn.proj.{weight,bias}        (output projection)
    clip_model.{token_embedding,transformer,...}.*                          (text tower, unused here)
    clip_model_frozen.clip_model_frozen.*                                   (frozen copy, packed in_proj)
    img_fc.*, text_fc.*, clip_model_frozen.img_frozen_fc.*                  (h_img, h_text, h_img^T)

Their LoRA computes W x + (alpha / sqrt(r)) B A x (A: r x in, B: out x r) and adds B A into W in
place when the module is put in eval mode, so a file saved in eval mode holds merged weights. The
student's q/k/v weights are compared with the frozen copy to tell which: merged weights are
W_frozen + c B A, and then the frozen weights are the base and c gives alpha = c sqrt(r); B A is
never applied twice.

The alpha of an unmerged file is not stored in it: the authors' default `--alpha 6`
(`options/base_options.py`) is used unless `lora_alpha=` says otherwise. peft's `use_rslora=True`
gives the same alpha / sqrt(r) scaling.
"""

from __future__ import annotations

import math
import pickle
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..errors import CheckpointError, one_line
from ..verdict import DEFAULT_THRESHOLD
from .checkpoint import check_finite_scores, save_checkpoint
from .manifest import check_output_folder, sha256_file

STUDENT = "clip_model."
FROZEN = "clip_model_frozen.clip_model_frozen."
VISUAL = STUDENT + "visual."
FROZEN_VISUAL = FROZEN + "visual."
HEAD_KEYS = {"h_img": "img_fc", "h_text": "text_fc", "h_img_T": "clip_model_frozen.img_frozen_fc"}
AUTHORS_DEFAULT_ALPHA = 6.0  # DGS-Net options/base_options.py: --alpha default 6
AUTHORS_DEFAULT_DROPOUT = 0.8  # DGS-Net options/base_options.py: --dropout_rate default 0.8
QKV = ("q", "k", "v")

# One student projection (q, k or v): weight, bias, and its LoRA factors A and B (both or neither)
ProjectionWeights = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]

# Architectures an authors' file can be mapped to; the 224-pixel input is what the 7x7 mosaic feeds.
# OpenAI CLIP uses QuickGELU, so the open_clip "-quickgelu" configurations are the exact match.
_CANDIDATES = ("test-tiny", "ViT-L-14-quickgelu", "ViT-B-16-quickgelu", "ViT-B-32-quickgelu")


# ------------------------------------------------------------------------------- reading
def _unpickler_detail(exc: BaseException) -> str:
    """The informative line of torch's long weights_only error (e.g. 'Unsupported global: ...')."""
    for line in str(exc).splitlines():
        if "WeightsUnpickler error:" in line:
            detail = line.split("WeightsUnpickler error:", 1)[1].strip()
            return detail.split(". Please use", 1)[0]
    return ""


def _load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    name = path.name
    if not path.exists():
        raise CheckpointError(f"{path} does not exist")
    if not path.is_file():
        raise CheckpointError(f"{path} is not a file (expected the authors' model_epoch_step2.pth)")
    is_zip = zipfile.is_zipfile(path)
    try:
        # mmap keeps the ~3 GB file out of memory except for the tensors that are used
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        detail = _unpickler_detail(exc)
        if "global" in detail.lower():
            raise CheckpointError(
                f"refused to load {name}: it refers to Python code or objects other than tensors, which could run "
                f"code when read ({detail[:160]}); only plain state dicts can be imported") from None
        raise CheckpointError(f"cannot read {name} as a PyTorch weights file "
                              f"({detail[:160] or 'not a torch.save file'})") from None
    except (RuntimeError, EOFError, OSError, ValueError, TypeError, AttributeError, KeyError, IndexError,
            zipfile.BadZipFile) as exc:
        if "weights only" in str(exc).lower():
            raise CheckpointError(f"refused to load {name}: it is not a plain weights file "
                                  f"({one_line(exc, 120)})") from None
        raise CheckpointError(f"cannot read {name} as a PyTorch weights file: {one_line(exc, 200)}") from None
    return _as_state_dict(obj, name)


def _as_state_dict(obj: object, name: str) -> dict[str, torch.Tensor]:
    if isinstance(obj, Mapping) and not any(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in ("state_dict", "model", "model_state_dict", "net"):
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                obj = inner
                break
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{name} does not hold a state dict (it holds a {type(obj).__name__}); "
                              f"expected the authors' model_epoch_step2.pth")
    state = {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, torch.Tensor)}
    if not state:
        raise CheckpointError(f"{name} does not hold a state dict of tensors; expected the authors' "
                              f"model_epoch_step2.pth")
    if all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def _classify(state: Mapping[str, torch.Tensor], name: str) -> None:
    """Clear errors for files that are not the authors' stage-2 state dict."""
    if any(k.startswith(VISUAL) for k in state):
        if (VISUAL + "layer1.0.conv1.weight") in state or (VISUAL + "attnpool.c_proj.weight") in state:
            raise CheckpointError(f"{name} uses a ResNet CLIP backbone; only ViT backbones are supported")
        return
    if "img_frozen_fc.weight" in state and any(k.startswith("clip_model_frozen.visual.") for k in state):
        raise CheckpointError(f"{name} is the authors' stage-1 probe file (model_epoch_step1.pth); import the "
                              f"stage-2 file model_epoch_step2.pth")
    if "visual.conv1.weight" in state:
        raise CheckpointError(f"{name} is a plain CLIP state dict, not a DGS-Net detector (no clip_model.* "
                              f"student, no LoRA, no img_fc head)")
    raise CheckpointError(f"{name} is not a DGS-Net state dict: missing keys {VISUAL}* (the student CLIP "
                          f"image encoder); expected the authors' model_epoch_step2.pth")


def _require(state: Mapping[str, torch.Tensor], keys: list[str], name: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
        raise CheckpointError(f"{name} is missing keys of the DGS-Net layout: {shown}")


# -------------------------------------------------------------------------- architecture
def _shape_facts(state: Mapping[str, torch.Tensor], name: str) -> dict[str, Any]:
    keys = [VISUAL + k for k in ("conv1.weight", "class_embedding", "positional_embedding", "proj",
                                 "ln_pre.weight", "ln_post.weight")]
    _require(state, keys, name)
    conv = state[VISUAL + "conv1.weight"]
    positions = state[VISUAL + "positional_embedding"]
    proj = state[VISUAL + "proj"]
    prefix = VISUAL + "transformer.resblocks."
    blocks = {int(k[len(prefix):].split(".", 1)[0]) for k in state if k.startswith(prefix)
              and k[len(prefix):].split(".", 1)[0].isdigit()}
    if conv.dim() != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3] or positions.dim() != 2 \
            or proj.dim() != 2 or not blocks:
        raise CheckpointError(f"{name}: unknown tensor shapes for a CLIP ViT (conv1 {tuple(conv.shape)}, "
                              f"positional_embedding {tuple(positions.shape)}, proj {tuple(proj.shape)})")
    if blocks != set(range(len(blocks))):
        raise CheckpointError(f"{name}: transformer blocks are not numbered 0..{len(blocks) - 1}")
    width, patch = int(conv.shape[0]), int(conv.shape[2])
    grid = math.isqrt(int(positions.shape[0]) - 1)
    if grid * grid != positions.shape[0] - 1 or positions.shape[1] != width or proj.shape[0] != width:
        raise CheckpointError(f"{name}: unknown tensor shapes for a CLIP ViT (width {width}, positional_embedding "
                              f"{tuple(positions.shape)}, proj {tuple(proj.shape)})")
    fc_key = VISUAL + "transformer.resblocks.0.mlp.c_fc.weight"
    _require(state, [fc_key], name)
    return {"width": width, "layers": len(blocks), "patch_size": patch, "image_size": grid * patch,
            "embed_dim": int(proj.shape[1]), "mlp_width": int(state[fc_key].shape[0])}


def _arch_facts(arch: str) -> dict[str, Any] | None:
    if arch == "test-tiny":
        from .backbone import _TEST_TINY_CFG as cfg
    else:
        import open_clip

        cfg = open_clip.get_model_config(arch)
        if cfg is None:
            return None
    vision = cfg["vision_cfg"]
    if not isinstance(vision.get("layers"), int) or "timm_model_name" in vision:
        return None
    width = int(vision["width"])
    return {"width": width, "layers": int(vision["layers"]), "patch_size": int(vision["patch_size"]),
            "image_size": int(vision["image_size"]), "embed_dim": int(cfg["embed_dim"]),
            "mlp_width": int(width * vision.get("mlp_ratio", 4.0))}


def _pick_architecture(facts: dict[str, Any], requested: str | None, name: str) -> str:
    shapes = ", ".join(f"{k} {v}" for k, v in facts.items())
    if requested:
        expected = _arch_facts(requested)
        if expected is None:
            raise CheckpointError(f"unknown architecture {requested!r} (an open_clip ViT name or test-tiny)")
        if expected != facts:
            raise CheckpointError(f"{name} does not fit architecture {requested}: the file has {shapes}")
        return requested
    for arch in _CANDIDATES:
        if _arch_facts(arch) == facts:
            return arch
    raise CheckpointError(f"{name}: unknown backbone shapes ({shapes}); pass the open_clip architecture name "
                          f"explicitly if it is a ViT that DGS Desktop can run")


# ---------------------------------------------------------------------------------- LoRA
def _frozen_qkv(state: Mapping[str, torch.Tensor], block: int) -> list[torch.Tensor] | None:
    pre = FROZEN_VISUAL + f"transformer.resblocks.{block}.attn."
    if pre + "in_proj_weight" in state:
        return list(state[pre + "in_proj_weight"].chunk(3))
    if all(pre + f"{t}_proj.weight" in state for t in QKV):
        return [state[pre + f"{t}_proj.weight"] for t in QKV]
    return None


def _student_attention(state: Mapping[str, torch.Tensor], block: int, name: str
                       ) -> tuple[list[ProjectionWeights], tuple[torch.Tensor, torch.Tensor]]:
    """[(weight, bias, A, B) for q, k, v], (out weight, out bias) of one student block."""
    pre = VISUAL + f"transformer.resblocks.{block}.attn."
    if pre + "proj.w_lora_A" in state or pre + "out_proj.w_lora_A" in state:
        raise CheckpointError(f"{name} has LoRA on the attention output projection (block {block}); DGS Desktop "
                              f"supports LoRA on q, k and v only (the paper's setting)")
    if pre + "in_proj_weight" in state:  # a block the authors left without LoRA
        _require(state, [pre + "in_proj_bias", pre + "out_proj.weight", pre + "out_proj.bias"], name)
        weights = state[pre + "in_proj_weight"].chunk(3)
        biases = state[pre + "in_proj_bias"].chunk(3)
        qkv: list[ProjectionWeights] = [(w, b, None, None) for w, b in zip(weights, biases)]
        return qkv, (state[pre + "out_proj.weight"], state[pre + "out_proj.bias"])
    keys = [pre + f"{t}_proj.{p}" for t in QKV for p in ("weight", "bias")] + [pre + "proj.weight", pre + "proj.bias"]
    _require(state, keys, name)
    qkv = []
    for t in QKV:
        a, b = state.get(pre + f"{t}_proj.w_lora_A"), state.get(pre + f"{t}_proj.w_lora_B")
        if (a is None) != (b is None):
            raise CheckpointError(f"{name} has only one of w_lora_A / w_lora_B for {pre}{t}_proj")
        qkv.append((state[pre + f"{t}_proj.weight"], state[pre + f"{t}_proj.bias"], a, b))
    return qkv, (state[pre + "proj.weight"], state[pre + "proj.bias"])


def _merge_scale(student: torch.Tensor, frozen: torch.Tensor, a: torch.Tensor, b: torch.Tensor,
                 where: str, name: str) -> float | None:
    """0.0 if student == frozen (unmerged), c if student == frozen + c B A (merged), None if B A == 0."""
    eps = max(torch.finfo(student.dtype).eps, torch.finfo(frozen.dtype).eps)
    w_s, w_f = student.double(), frozen.double()
    delta = w_s - w_f
    ba = b.double() @ a.double()
    ref = float(w_f.norm()) + 1e-30
    d_norm, ba_norm = float(delta.norm()), float(ba.norm())
    if d_norm <= 16 * eps * ref:
        return None if ba_norm == 0.0 else 0.0
    if ba_norm == 0.0:
        raise CheckpointError(f"{name}: the student's {where} differs from the frozen copy but its LoRA is zero; "
                              f"the file does not follow the DGS-Net layout")
    scale = float((delta * ba).sum()) / (ba_norm ** 2)
    residual = float((delta - scale * ba).norm())
    if residual > 16 * eps * ref + 1e-3 * d_norm:
        raise CheckpointError(f"{name}: the student's {where} differs from the frozen copy by more than its LoRA "
                              f"update (B A); cannot tell the pre-trained weights")
    return scale


# ------------------------------------------------------------------------------- import
def import_authors_weights(pth_path: str | Path, out_dir: str | Path, architecture: str | None = None, *,
                           lora_alpha: float | None = None, threshold: float = DEFAULT_THRESHOLD) -> Path:
    """Converts the authors' `model_epoch_step2.pth` into a checkpoint directory at `out_dir`.

    The backbone weights in the file are bundled (`base_weights="authors-bundled"`), so the
    result works offline. `architecture` is inferred from the tensor shapes when not given.
    Returns `out_dir`. Every failure is a `CheckpointError` with a plain one-line message.
    """
    from .manifest import LoraSettings
    from .model import build_detector

    path = Path(pth_path).expanduser()
    out = Path(out_dir).expanduser()
    check_output_folder(out)
    name = path.name
    state = _load_state_dict(path)
    _classify(state, name)
    facts = _shape_facts(state, name)
    arch = _pick_architecture(facts, architecture, name)
    layers = facts["layers"]

    # -- attention: base q/k/v, LoRA A/B, merged or not --------------------------------------
    blocks = [_student_attention(state, i, name) for i in range(layers)]
    ranks = {a.shape[0] for qkv, _ in blocks for _, _, a, _ in qkv if a is not None}
    if not ranks:
        raise CheckpointError(f"{name} has no LoRA weights (w_lora_A / w_lora_B) in {VISUAL}*; it is not a DGS-Net "
                              f"stage-2 file")
    if len(ranks) != 1:
        raise CheckpointError(f"{name} has LoRA weights of different ranks {sorted(ranks)}")
    rank = ranks.pop()
    width = facts["width"]
    for i, (qkv, _) in enumerate(blocks):
        for t, (w, bias, a, b) in zip(QKV, qkv):
            if tuple(w.shape) != (width, width) or tuple(bias.shape) != (width,):
                raise CheckpointError(f"{name}: block {i} {t}_proj has shape {tuple(w.shape)}, expected "
                                      f"({width}, {width})")
            if a is not None and b is not None and (tuple(a.shape) != (rank, width) or tuple(b.shape) != (width, rank)):
                raise CheckpointError(f"{name}: block {i} {t}_proj LoRA shapes A {tuple(a.shape)}, B "
                                      f"{tuple(b.shape)} do not fit width {width}")

    frozen: list[list[torch.Tensor]] = []
    for i in range(layers):
        frozen_block = _frozen_qkv(state, i)
        if frozen_block is None:
            raise CheckpointError(f"{name} is missing the frozen copy {FROZEN_VISUAL}transformer.resblocks.N.attn.* "
                                  f"that tells merged from unmerged LoRA weights")
        frozen.append(frozen_block)
    scales: list[float] = []
    unmerged = 0
    for i, ((qkv, _), fro) in enumerate(zip(blocks, frozen)):
        for t, (w, _, a, b), w_f in zip(QKV, qkv, fro):
            if tuple(w_f.shape) != tuple(w.shape):
                raise CheckpointError(f"{name}: frozen copy of block {i} {t}_proj has shape {tuple(w_f.shape)}")
            if a is None or b is None:
                continue
            scale = _merge_scale(w, w_f, a, b, f"block {i} {t}_proj weight", name)
            if scale is None:
                continue
            if scale == 0.0:
                unmerged += 1
            else:
                scales.append(scale)
    if scales and unmerged:
        raise CheckpointError(f"{name} mixes merged and unmerged LoRA layers; cannot import it safely")
    merged = bool(scales)
    if merged:
        scales.sort()
        median = scales[len(scales) // 2]
        if median <= 0 or any(abs(s - median) > 1e-3 * abs(median) for s in scales):
            raise CheckpointError(f"{name}: merged LoRA layers use different scales ({scales[0]:.4g} to "
                                  f"{scales[-1]:.4g}); cannot recover alpha")
        alpha = median * math.sqrt(rank)
        alpha_source = "inferred from the merged weights: (W_student - W_frozen) = (alpha/sqrt(r)) B A"
        if lora_alpha is not None and abs(float(lora_alpha) - alpha) > 1e-3 * alpha:
            raise CheckpointError(f"{name}: its merged weights imply LoRA alpha {alpha:.4g}, not {lora_alpha}")
    else:
        alpha = float(lora_alpha) if lora_alpha is not None else AUTHORS_DEFAULT_ALPHA
        alpha_source = ("given by the caller" if lora_alpha is not None else
                        "the authors' default --alpha 6 (options/base_options.py); the .pth does not store alpha")

    # -- the detector ------------------------------------------------------------------------
    lora = LoraSettings(r=int(rank), alpha=float(alpha), dropout=AUTHORS_DEFAULT_DROPOUT, rslora=True)
    try:
        detector = build_detector(arch, None, lora)
    except Exception as exc:  # noqa: BLE001 - open_clip/peft errors while building a random-init model
        raise CheckpointError(f"cannot build the {arch} backbone: {one_line(exc)}") from None

    base: dict[str, torch.Tensor] = {}
    missing: list[str] = []
    for key in detector.base_visual_state_dict():
        parts = key.split(".")
        if len(parts) == 6 and parts[0] == "transformer" and parts[3] == "attn":
            block, module, param = int(parts[2]), parts[4], parts[5]
            qkv, (out_w, out_b) = blocks[block]
            if module == "out_proj":
                base[key] = out_w if param == "weight" else out_b
                continue
            if module in ("q_proj", "k_proj", "v_proj"):
                j = QKV.index(module[0])
                w, bias, _, _ = qkv[j]
                base[key] = (frozen[block][j] if merged else w) if param == "weight" else bias
                continue
        source = VISUAL + key
        if source in state:
            base[key] = state[source]
        else:
            missing.append(source)
    if missing:
        _require(state, missing, name)

    lora_state: dict[str, torch.Tensor] = {}
    for key, template in detector.lora_state_dict().items():
        parts = key.split(".")
        # base_model.model.transformer.resblocks.N.attn.{q,k,v}_proj.lora_{A,B}.weight
        block, module, which = int(parts[4]), parts[6], parts[7]
        _, _, a, b = blocks[block][0][QKV.index(module[0])]
        if a is None or b is None:
            lora_state[key] = torch.zeros_like(template)
        else:
            lora_state[key] = a if which == "lora_A" else b

    heads: dict[str, nn.Linear] = {}
    _require(state, ["img_fc.weight", "img_fc.bias"], name)
    for head_name, prefix in HEAD_KEYS.items():
        head_weight, head_bias = state.get(prefix + ".weight"), state.get(prefix + ".bias")
        if head_weight is None or head_bias is None:
            continue
        if head_weight.dim() != 2 or head_weight.shape[0] != 1 or tuple(head_bias.shape) != (1,):
            raise CheckpointError(f"{name}: head {prefix} has shape {tuple(head_weight.shape)}; expected one output")
        layer = nn.Linear(head_weight.shape[1], 1)
        with torch.no_grad():
            layer.weight.copy_(head_weight.float())
            layer.bias.copy_(head_bias.float())
        heads[head_name] = layer
    if heads["h_img"].in_features != detector.embed_dim:
        raise CheckpointError(f"{name}: head img_fc takes {heads['h_img'].in_features} features, the backbone "
                              f"gives {detector.embed_dim}")

    head_tensors = {f"{n}.{part}": getattr(layer, part) for n, layer in heads.items() for part in ("weight", "bias")}
    for key, tensor in list(base.items()) + list(lora_state.items()) + list(head_tensors.items()):
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{name} holds non-finite values (NaN/inf) in {key}")
    try:
        detector.load_base_visual_state_dict({k: v.float() for k, v in base.items()})
        detector.load_lora_state_dict({k: v.float().contiguous() for k, v in lora_state.items()})
        with torch.no_grad():
            detector.head.weight.copy_(heads["h_img"].weight)
            detector.head.bias.copy_(heads["h_img"].bias)
    except (ValueError, RuntimeError) as exc:
        raise CheckpointError(f"{name} does not fit the {arch} architecture: {one_line(exc)}") from None

    check_finite_scores(detector)  # refused at import, not at the first scan
    extra = {k: v for k, v in heads.items() if k != "h_img"}
    provenance = {
        "imported_from": name,
        "sha256": sha256_file(path),
        "source_format": "DGS-Net (HorizonTEL) CLIPModel state dict",
        "merged": merged,
        "lora_alpha_source": alpha_source,
        "lora_blocks": sum(1 for qkv, _ in blocks if qkv[0][2] is not None),
        "architecture_inferred": architecture is None,
    }
    save_checkpoint(out, detector, architecture=arch, base_weights="authors-bundled", bundle_base=True,
                    threshold=threshold, provenance=provenance, extra_heads=extra)
    return out


__all__ = ["import_authors_weights"]
