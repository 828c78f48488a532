"""Resume state (`state.pt` in the run folder): everything a seeded run needs to continue
bit-for-bit — weights of the trained parts, optimizer and scaler, position in the data,
per-rank random generators and the counters. Read back with `torch.load(weights_only=True)`."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dgs_desktop.atomic import atomic_path

from .errors import TrainError
from .networks import Networks
from .runtime import Runtime

STATE_VERSION = 1


@dataclass
class Counters:
    teacher_forward_images: int = 0  # images that went through a teacher forward in stage 2
    teacher_cached_images: int = 0  # images whose stage-2 f^T came from the stage-1 cache
    student_images: int = 0
    feature_cache_loaded: bool = False  # the stage-1 features were read back from the run folder


@dataclass(frozen=True)
class Position:
    """Where training continues: `stage` is "probe" (stage 1 done) or "dgs" (stage 2 running)."""

    stage: str
    epoch: int = 0
    step_in_epoch: int = 0
    global_step: int = 0


def _cpu(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu() for k, v in module.state_dict().items()}


def collect_state(networks: Networks, runtime: Runtime, position: Position, *, fingerprint: str, probe_steps: int,
                  counters: Counters, optimizer=None, scaler=None, elapsed_s: float = 0.0) -> dict:
    """The state dict of this moment; collective (every rank contributes its RNG states)."""
    dist, device = runtime.dist, runtime.device
    rng = dist.all_gather_object(torch.get_rng_state())
    cuda_rng = dist.all_gather_object(torch.cuda.get_rng_state(device) if device.type == "cuda"
                                      else torch.zeros(0, dtype=torch.uint8))
    return {
        "version": STATE_VERSION, "fingerprint": fingerprint, "world": dist.world,
        "stage": position.stage, "epoch": position.epoch, "step_in_epoch": position.step_in_epoch,
        "global_step": position.global_step, "probe_steps": probe_steps,
        "lora": {k: v.cpu() for k, v in networks.detector.lora_state_dict().items()},
        "h_img": _cpu(networks.detector.head), "h_text": _cpu(networks.h_text), "h_teacher": _cpu(networks.h_teacher),
        "optimizer": optimizer.state_dict() if optimizer is not None else {},
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else {},
        "rng": rng, "cuda_rng": cuda_rng, "counters": asdict(counters), "elapsed_s": elapsed_s,
    }


def write_state(state: dict, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_state(path: Path, *, fingerprint: str, world: int) -> dict:
    """The saved state, refused unless it belongs to this data, these settings and this world size."""
    where = path.parent
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user problem
        raise TrainError(f"cannot read the saved state in {where}: {exc}") from None
    if not isinstance(state, dict) or state.get("version") != STATE_VERSION:
        raise TrainError(f"the saved state in {where} comes from another trainer version")
    if state.get("fingerprint") != fingerprint:
        raise TrainError(f"--resume: the data or hyper-parameters differ from the saved run in {where}")
    if state.get("world") != world:
        raise TrainError(f"--resume: the saved run used {state.get('world')} process(es), this one "
                         f"{world}; resume with the same number")
    return state


def restore_networks(networks: Networks, state: dict, device: torch.device) -> None:
    networks.detector.load_lora_state_dict({k: v.to(device) for k, v in state["lora"].items()})
    networks.detector.head.load_state_dict(state["h_img"])
    networks.h_text.load_state_dict(state["h_text"])
    networks.h_teacher.load_state_dict(state["h_teacher"])


def restore_rng(state: dict, runtime: Runtime) -> None:
    rank = runtime.dist.rank
    torch.set_rng_state(state["rng"][rank])
    if runtime.device.type == "cuda" and len(state["cuda_rng"][rank]):
        torch.cuda.set_rng_state(state["cuda_rng"][rank], runtime.device)


def position_of(state: dict) -> Position:
    return Position(state["stage"], int(state["epoch"]), int(state["step_in_epoch"]), int(state["global_step"]))

