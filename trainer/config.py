"""The trainer's configurations: dataclasses whose fields are also the commands' options.

Each field carries its command-line help (and, where needed, its flag, value parser or
choices) in its metadata; `add_arguments` turns the fields into argparse options and
`from_args` turns parsed options back into the dataclass, so every default is written once,
here. `SourceOptions` holds the options `train` and `evaluate` share (how to read a data
source, the device, progress bars); `TrainConfig` and `EvaluateConfig` extend it. Defaults
follow the paper (Sec. 5.1) and the authors' code where the paper is silent.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import MISSING, asdict, dataclass, field, fields

from dgs_desktop.cli.shell import non_negative_float, non_negative_int, positive_float, positive_int, probability
from dgs_desktop.cli.shell import threshold as threshold_value
from dgs_desktop.detector.backbone import DEFAULT_ARCH, DEFAULT_PRETRAINED
from dgs_desktop.detector.manifest import LoraSettings
from dgs_desktop.errors import UsageError
from dgs_desktop.scan.decode import ANALYST, DECODINGS
from dgs_desktop.verdict import DEFAULT_THRESHOLD

from .captions import CAPTIONER
from .evaluate import BLUR_BACKENDS
from .surgery import MODES

AMP_MODES = ("auto", "bf16", "fp16", "off")
_LORA = LoraSettings()


def weights_tag(text: str) -> str | None:
    """open_clip pretrained tag; 'none' (or 'random') means random initial weights."""
    return None if text.strip().lower() in ("none", "random", "") else text


def default_workers() -> int:
    return min(4, os.cpu_count() or 1)


def quality_percent(text: str) -> int:
    """A JPEG quality, 1-100."""
    value = positive_int(text)
    if value > 100:
        raise argparse.ArgumentTypeError(f"JPEG quality must be 1-100, got {value}")
    return value


def option(default=MISSING, help: str = "", *, flag: str | None = None, type=None, choices=None,
           default_factory=MISSING):
    """A dataclass field that is also a command-line option.

    A bool field with default True becomes a `--no-...` switch (give `flag`), one with
    default False a plain switch; a field without default is a required option.
    """
    metadata = {"help": help, "flag": flag, "type": type, "choices": choices}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(kw_only=True)
class SourceOptions:
    """The options `train` and `evaluate` share: how to read a data source, the device, progress bars."""

    classes: str | None = option(None, "keep only these categories, comma-separated (folders holding the class "
                                        "leaves, or a dataset's category column); the paper's Setting II: "
                                        "car,cat,chair,horse,sdv1.4")
    split: str | None = option(None, "split of a parquet or hf-dataset: source (default: its only split)")
    image_column: str | None = option(None, "dataset column with the images (default: the Image feature)")
    label_column: str | None = option(None, "dataset column with the labels (default: the ClassLabel named "
                                             "real/fake; unnamed values: 0 real, 1 fake)")
    subset_column: str | None = option(None, "dataset column naming each image's subset, a row of evaluate's "
                                              "table (default: generator)")
    category_column: str | None = option(None, "dataset column --classes selects on (default: category or "
                                                "class, else the subset column)")
    device: str = option("auto", "auto, cpu, cuda, cuda:N")
    progress: bool = option(True, "no progress bars", flag="--no-progress")

    def data_options(self, split: str | None = None):
        from .sources import DataOptions, parse_classes

        return DataOptions(classes=parse_classes(self.classes), split=split, image_column=self.image_column,
                           label_column=self.label_column, subset_column=self.subset_column,
                           category_column=self.category_column)


@dataclass(kw_only=True)
class TrainConfig(SourceOptions):
    data: str = option(help="training data: a folder tree with 0_real/ and 1_fake/ leaves, a folder of parquet "
                            "shards, or hf-dataset:ORG/NAME[@REVISION]")
    out: str = option(help="checkpoint folder to write (the app loads it)")
    val: str | None = option(None, "validation data (same forms as --data), evaluated after every epoch")
    val_split: str | None = option(None, "split of the --val dataset")
    arch: str = option(DEFAULT_ARCH, f"backbone: {DEFAULT_ARCH} (paper), test-tiny, or an open_clip name")
    pretrained: str | None = option(DEFAULT_PRETRAINED, "open_clip weights tag ('none' for random weights)",
                                    type=weights_tag)
    captioner: str = option(CAPTIONER, "BLIP model for captions, or test-tiny")
    captions: str | None = option(None, "JSON file of precomputed captions (image path -> caption), "
                                        "authors' format")
    max_steps: int | None = option(None, "stop each stage after N optimizer steps (smoke tests)",
                                   type=positive_int)
    epochs: int = option(1, "stage-2 epochs (paper: 1)", type=positive_int)
    probe_epochs: int = option(3, "stage-1 probe epochs (authors: 3)", type=positive_int)
    batch_size: int = option(32, "global batch size, all processes and micro-batches (paper: 32)",
                             type=positive_int)
    accum: int = option(1, "micro-batches per step (gradient accumulation)", type=positive_int)
    lr: float = option(1e-4, "Adam learning rate (paper: 1e-4)", type=positive_float)
    probe_lr: float | None = option(None, "stage-1 learning rate (default: --lr)", type=positive_float)
    lam: float = option(0.2, "prior-alignment weight lambda (paper: 0.2)", type=non_negative_float)
    surgery: str = option("reference", "reference: the authors' hook, which produced the published numbers "
                                       "(projects the whole gradient, lambda/B); paper: eq. 16", choices=MODES)
    orthogonal_suppression: bool = option(True, "ablation: keep g_task unprojected",
                                          flag="--no-orthogonal-suppression")
    prior_alignment: bool = option(True, "ablation: drop the lambda term", flag="--no-prior-alignment")
    seed: int = option(0, "random seed (data order, views, LoRA init and dropout)", type=int)
    amp: str = option("auto", "mixed precision (auto: bf16 on CUDA, fp32 elsewhere; fp16 uses a GradScaler)",
                      choices=AMP_MODES)
    resume: bool = option(False, "continue from the last saved state of this --out")
    workers: int = option(help="data-loading processes", type=non_negative_int, default_factory=default_workers)
    save_every: int = option(200, "save resume state every N steps", type=positive_int)
    run_dir: str | None = option(None, "run folder for state, metrics.csv, loss.png (default: OUT.run)")
    cache_dir: str | None = option(None, "cache folder for captions and teacher features (default: the user "
                                          "cache, or $DGS_DESKTOP_CACHE)")
    feature_cache: bool = option(True, "run the teacher forward in stage 2 instead of reusing the stage-1 "
                                       "features", flag="--no-feature-cache")
    bundle_base: bool = option(False, "store the base vision weights in the checkpoint")
    lora_r: int = option(_LORA.r, "LoRA rank (paper: 6)", type=positive_int)
    lora_alpha: float = option(_LORA.alpha, "LoRA alpha (paper: 6; scaled by alpha/sqrt(r) as the authors)",
                               type=positive_float)
    lora_dropout: float = option(_LORA.dropout, "LoRA dropout (paper: 0.8)", type=probability)

    def lora_settings(self) -> LoraSettings:
        return LoraSettings(r=self.lora_r, alpha=self.lora_alpha, dropout=self.lora_dropout)

    def surgery_config(self):
        from .step import SurgeryConfig

        return SurgeryConfig(lam=self.lam, mode=self.surgery, orthogonal_suppression=self.orthogonal_suppression,
                             prior_alignment=self.prior_alignment)

    def fingerprint_fields(self) -> dict:
        """What must not change between a run and its --resume."""
        skip = {"out", "val", "val_split", "max_steps", "epochs", "resume", "workers", "save_every", "run_dir", "cache_dir",
                "progress", "device", "captions", "captioner"}
        return {k: v for k, v in asdict(self).items() if k not in skip}

    def validate(self) -> None:
        """Checks the settings that a Python caller (not argparse) could still get wrong."""
        if self.surgery not in MODES:
            raise UsageError(f"--surgery must be one of {', '.join(MODES)}, not {self.surgery!r}")
        if self.amp not in AMP_MODES:
            raise UsageError(f"--amp must be one of {', '.join(AMP_MODES)}, not {self.amp!r}")
        if self.batch_size < 1 or self.accum < 1:
            raise UsageError("--batch-size and --accum must be at least 1")
        if not self.lr > 0:
            raise UsageError("--lr must be positive")


@dataclass(kw_only=True)
class EvaluateConfig(SourceOptions):
    checkpoint: str = option(help="checkpoint folder or hf:ORG/NAME[@REV]")
    data: str = option(help="test data: a folder tree (one subset per top-level folder, pooling the 0_real/ and "
                            "1_fake/, or nature/ and ai/, folders beneath it), a folder of parquet shards, or "
                            "hf-dataset:ORG/NAME[@REVISION] (one subset per generator)")
    csv: str | None = option(None, "write the table here: one row per subset, then mean and paper_table")
    scores: str | None = option(None, "write one row per image (path, subset, category, label, probability) here")
    jpeg_quality: int | None = option(None, "re-encode each image as JPEG at this quality first", type=quality_percent)
    blur_sigma: float | None = option(None, "Gaussian-blur each image with this sigma first", type=non_negative_float)
    blur_backend: str = option("pillow", "pillow (default): Pillow's GaussianBlur; scipy: the authors' scipy "
                                         "gaussian_filter (pip install 'dgs-desktop[paper]'; Pillow is within ~1 "
                                         "gray level of it)", choices=BLUR_BACKENDS)
    decoding: str = option(ANALYST, "analyst (default, as the app scans): EXIF orientation applied, 16-bit images "
                                    "scaled; authors: their Image.open().convert('RGB'), no rotation, 16-bit values "
                                    "saturate (to reproduce the paper)", choices=DECODINGS)
    threshold: float = option(DEFAULT_THRESHOLD, f"fake when P(fake) > threshold (default {DEFAULT_THRESHOLD})",
                              type=threshold_value)
    precision: str = option("auto", "auto: fp32 on every device, as the authors evaluated (bf16: faster, scores "
                                    "move ~1e-3)", choices=("auto", "fp32", "bf16"))
    batch_size: int | None = option(None, "images per forward pass (default: the scan's, 8 on CPU and 32 on CUDA, "
                                          "so scores match it)", type=positive_int)
    workers: int = option(help="threads for decoding and patch selection", type=positive_int,
                          default_factory=default_workers)


def _flag(f) -> str:
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser, config_class: type = TrainConfig) -> None:
    """One argparse option per field of `config_class`, with the field's default and help."""
    for f in fields(config_class):
        meta = f.metadata
        default = f.default_factory() if f.default_factory is not MISSING else f.default
        if f.type in ("bool", bool):
            action = "store_false" if default else "store_true"
            parser.add_argument(_flag(f), dest=f.name, action=action, help=meta["help"])
            continue
        kwargs = {"dest": f.name, "help": meta["help"]}
        if default is MISSING:
            kwargs["required"] = True
        else:
            kwargs["default"] = default
            if default is not None and "(default" not in meta["help"]:
                kwargs["help"] = f"{meta['help']} (default: {default})"
        if meta["type"] is not None:
            kwargs["type"] = meta["type"]
        if meta["choices"] is not None:
            kwargs["choices"] = meta["choices"]
        parser.add_argument(_flag(f), **kwargs)


def from_args(args: argparse.Namespace, config_class: type = TrainConfig):
    """The `config_class` the parsed options describe."""
    return config_class(**{f.name: getattr(args, f.name) for f in fields(config_class)})
