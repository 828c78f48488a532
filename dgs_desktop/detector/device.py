"""Device choice and mixed precision.

`--precision auto` (the default everywhere) computes in fp32 on every device: a forensic
score must not depend on the hardware, and bf16 moves P(fake) by ~1e-3, enough to flip a
verdict near the threshold on one analyst's laptop and not on another's. bf16 autocast is an
explicit fast mode (`--precision bf16`: ViT-L/14 0.93 -> 2.33 images/s measured on one AMX
core), recorded in the CSV `precision` column like fp32.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator

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


PRECISIONS = ("auto", "fp32", "bf16")
_NATIVE_BF16_FLAGS = frozenset({"amx_bf16", "avx512_bf16"})


@functools.lru_cache(maxsize=4)
def cpu_has_native_bf16(cpuinfo: str = "/proc/cpuinfo") -> bool:
    """Whether this CPU has bf16 matrix instructions (AMX or AVX512-BF16)."""
    try:
        with open(cpuinfo, encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return bool(_NATIVE_BF16_FLAGS & set(line.split(":", 1)[1].split()))
    except OSError:
        pass
    # No /proc (macOS, Windows): PyTorch reports the best kernels it dispatches to.
    capability = str(getattr(torch.backends.cpu, "get_cpu_capability", lambda: "")()).upper()
    return "AMX" in capability or "BF16" in capability


def resolve_precision(device: torch.device, requested: str = "auto") -> str:
    """`fp32` or `bf16`: what a model on `device` computes in for `auto`, `fp32` or `bf16`."""
    requested = (requested or "auto").strip().lower()
    if requested not in PRECISIONS:
        raise DeviceError(f"unknown precision {requested!r} (use auto, fp32 or bf16)")
    if requested == "auto":
        return "fp32"  # the same score on every machine (module docstring)
    if requested == "bf16" and device.type not in ("cuda", "cpu"):
        raise DeviceError(f"bf16 is not supported on {device.type}; use --precision fp32")
    return requested


def precision_options(device: torch.device) -> list[tuple[str, str]]:
    """(spec, label) pairs for a precision selector, `auto` naming what it resolves to."""
    options = [("auto", f"Auto ({resolve_precision(device, 'auto')}: the same score on every machine)"),
               ("fp32", "fp32")]
    if device.type in ("cuda", "cpu"):
        fast = " (fast on this CPU)" if device.type == "cpu" and cpu_has_native_bf16() else ""
        options.append(("bf16", f"bf16 autocast{fast}: scores move by ~1e-3"))
    return options


def autocast_for(device: torch.device, precision: str = "auto") -> contextlib.AbstractContextManager[object]:
    """bf16 autocast when `precision` resolves to bf16 on `device`; else IEEE fp32 (on CUDA
    with TF32 off: cuDNN convolutions, such as CLIP's patch embedding, default to TF32)."""
    if resolve_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if device.type == "cuda":
        return _ieee_fp32_on_cuda()
    return contextlib.nullcontext()


@contextlib.contextmanager
def _ieee_fp32_on_cuda() -> Iterator[None]:
    """Matrix products and convolutions in full fp32 for the block; the flags are restored after."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def precision_name(device: torch.device, precision: str = "auto") -> str:
    """What `autocast_for(device, precision)` computes in, as recorded in the CSV `precision` column."""
    return resolve_precision(device, precision)


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
