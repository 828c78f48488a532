"""Device choice and mixed precision: bf16 autocast on CUDA, fp32 elsewhere."""

from __future__ import annotations

import contextlib

import torch

from ..errors import DeviceError


def resolve_device(spec: str = "auto") -> torch.device:
    """`auto` picks CUDA, then a working MPS, then the CPU; `cpu`, `cuda`, `cuda:N`, `mps`."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise DeviceError(f"unknown device {spec!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {spec!r} requested but CUDA is not available on this machine")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {spec!r} does not exist ({torch.cuda.device_count()} CUDA device(s))")
    elif device.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise DeviceError("device 'mps' requested but MPS is not available")
    elif device.type != "cpu":
        raise DeviceError(f"unsupported device {spec!r}")
    return device


def autocast_for(device: torch.device):
    """bf16 autocast on CUDA; fp32 (no autocast) on CPU/MPS, where bf16 is slower here."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def precision_name(device: torch.device) -> str:
    """What `autocast_for(device)` computes in, as recorded in the CSV `precision` column."""
    return "bf16" if device.type == "cuda" else "fp32"


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return device.type


def list_devices() -> list[tuple[str, str]]:
    """(spec, label) pairs for a device selector: auto, cpu, each CUDA device with its memory."""
    devices = [("auto", "Auto"), ("cpu", "CPU")]
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            devices.append((f"cuda:{index}", f"cuda:{index} {props.name} ({props.total_memory / 2**30:.0f} GiB)"))
    return devices
