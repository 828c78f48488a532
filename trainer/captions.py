"""BLIP captions z for the text branch (paper eq. 5), cached on disk by file content.

- default captioner: `Salesforce/blip-image-captioning-base` through transformers'
  `BlipForConditionalGeneration`, greedy decoding, on the original (decoded) image;
- `test-tiny`: a random tiny BLIP built from a `BlipConfig` with a 22-word BERT tokenizer
  written to a temp folder (no download; for tests and demos);
- `--captions FILE`: the authors' JSON (image path -> caption) instead of a captioner.

The cache is one JSON file per captioner (sha256 of the image bytes -> caption), rewritten
atomically (temp file + rename) every few batches, so a crash loses at most a few batches
and a second run captions nothing again.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from pathlib import Path

from dgs_desktop.atomic import atomic_path
from dgs_desktop.detector.backbone import TEST_TINY
from dgs_desktop.errors import one_line

from .errors import TrainError

CAPTIONER = "Salesforce/blip-image-captioning-base"  # our choice: the paper cites BLIP [40], no checkpoint
MAX_NEW_TOKENS = 30
_TINY_VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "photo", "of", "the", "an", "image",
               "cat", "dog", "car", "red", "blue", "green", "small", "big", "on", "with", "in"]
_TINY_SEED = 20251128


def default_cache_dir() -> Path:
    from dgs_desktop.detector.verified import user_cache_dir

    return user_cache_dir()


class CaptionCache:
    """sha256 -> caption for one captioner, persisted as JSON."""

    def __init__(self, path: Path):
        self.path = path
        self.data: dict[str, str] = {}
        self._dirty = False
        self._last_flush = time.monotonic()
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
                if isinstance(loaded, dict):
                    self.data = {str(k): str(v) for k, v in loaded.items()}
            except (OSError, ValueError):
                self.data = {}  # a damaged cache is rebuilt, never fatal

    @classmethod
    def for_captioner(cls, name: str, cache_dir: Path | None = None) -> CaptionCache:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", name)
        return cls((cache_dir or default_cache_dir()) / "captions" / f"{slug}.json")

    def get(self, sha256: str) -> str | None:
        return self.data.get(sha256)

    def put(self, sha256: str, caption: str) -> None:
        self.data[sha256] = caption
        self._dirty = True

    def flush(self, force: bool = True, every_s: float = 30.0) -> None:
        if not self._dirty or (not force and time.monotonic() - self._last_flush < every_s):
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.path) as tmp, open(tmp, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle, ensure_ascii=False, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        self._dirty = False
        self._last_flush = time.monotonic()


class Captioner:
    """Batched greedy BLIP captioning on one device."""

    def __init__(self, name: str, device):
        import torch

        self.name = name
        self.device = device
        if name == TEST_TINY:
            self.model, self.processor, self.tokenizer = _tiny_blip()
        else:
            from transformers import BlipForConditionalGeneration, BlipProcessor

            try:
                self.processor = BlipProcessor.from_pretrained(name)
                self.model = BlipForConditionalGeneration.from_pretrained(name)
            except OSError as exc:
                raise TrainError(f"cannot load the captioner {name!r} (no network or not in the Hugging Face "
                                 f"cache?); pass --captions FILE with precomputed captions instead: "
                                 f"{one_line(exc)}") from None
            self.tokenizer = self.processor.tokenizer
            self.processor = self.processor.image_processor
        dtype = torch.float16 if getattr(device, "type", "cpu") == "cuda" else torch.float32
        self.model = self.model.to(device=device, dtype=dtype).eval()
        self.dtype = dtype

    def __call__(self, images) -> list[str]:
        import torch

        pixels = self.processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.inference_mode():
            out = self.model.generate(pixel_values=pixels.to(self.device, self.dtype),
                                      max_new_tokens=MAX_NEW_TOKENS, do_sample=False, num_beams=1)
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]


def _tiny_blip():
    """A ~50k-parameter random BLIP and a matching tokenizer, built offline and deterministic."""
    import torch
    from transformers import BertTokenizer, BlipConfig, BlipForConditionalGeneration, BlipImageProcessor

    with tempfile.TemporaryDirectory(prefix="dgs-tiny-blip-") as folder:  # read at once, removed after
        vocab = Path(folder) / "vocab.txt"
        vocab.write_text("\n".join(_TINY_VOCAB) + "\n", encoding="utf-8")
        # transformers 5: BertTokenizer(vocab_file=...) silently ignores the file; vocab=... works.
        tokenizer = BertTokenizer(vocab=str(vocab))
    if len(tokenizer) != len(_TINY_VOCAB):
        raise RuntimeError(f"tiny BLIP tokenizer has {len(tokenizer)} tokens, expected {len(_TINY_VOCAB)}")
    special = dict(bos_token_id=tokenizer.cls_token_id, sep_token_id=tokenizer.sep_token_id,
                   pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.sep_token_id)
    config = BlipConfig(
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
        text_config=dict(vocab_size=len(_TINY_VOCAB), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=64, **special),
        projection_dim=32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_TINY_SEED)
        model = BlipForConditionalGeneration(config)
    model.generation_config.update(**{k: v for k, v in special.items() if k != "sep_token_id"})
    return model, BlipImageProcessor(size={"height": 64, "width": 64}), tokenizer


# ------------------------------------------------------------------ authors' JSON file
class CaptionFile:
    """The authors' captions JSON (image path -> caption), matched to our samples by path.

    A sample matches a key equal to its absolute path, or the longest key suffix that equals
    its path relative to the data root (the authors' keys carry their own root prefix).
    """

    def __init__(self, path: str | os.PathLike):
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise TrainError(f"captions file {path} does not exist") from None
        except (OSError, ValueError) as exc:
            raise TrainError(f"captions file {path} is not readable JSON: {exc}") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise TrainError(f"captions file {path} must be a JSON object mapping image paths to caption strings")
        self.path = path
        self.exact = {os.path.normpath(k): v for k, v in data.items()}
        self.by_suffix: dict[str, str | None] = {}
        for key, caption in data.items():
            parts = Path(key.replace("\\", "/")).parts
            for depth in range(1, len(parts) + 1):
                suffix = "/".join(parts[-depth:])
                prior = self.by_suffix.get(suffix, caption)
                self.by_suffix[suffix] = caption if prior == caption else None  # None: ambiguous

    def lookup(self, abs_path: Path | None, rel: str) -> str | None:
        hit = self.exact.get(os.path.normpath(str(abs_path))) if abs_path is not None else None
        if hit is not None:
            return hit
        return self.by_suffix.get(rel)


def resolve_captions(samples, shas: list[str], *, captioner: str, captions_file: str | None, device,
                     batch_size: int = 32, cache_dir: Path | None = None, progress: bool = True,
                     dist=None) -> tuple[list[str], dict]:
    """One caption per sample, and a provenance dict (source, counts of cached/new captions).

    Captioning is split over the ranks of `dist` (each captions its share) and merged.
    """
    if captions_file:
        table = CaptionFile(captions_file)
        captions, missing = [], []
        for sample in samples:
            caption = table.lookup(sample.path, sample.rel)
            captions.append(caption or "")
            if caption is None:
                missing.append(sample.rel)
        if missing:
            raise TrainError(f"{len(missing)} training image(s) have no caption in {captions_file}, e.g. "
                             + ", ".join(missing[:3]))
        return captions, {"source": "file", "file": str(Path(captions_file).resolve())}

    cache = CaptionCache.for_captioner(captioner, cache_dir)
    first_of: dict[str, int] = {}
    for i, sha in enumerate(shas):
        first_of.setdefault(sha, i)
    # In data order, not hash order: dataset rows are then read row group by row group.
    todo = sorted({sha for sha in shas if cache.get(sha) is None}, key=first_of.__getitem__)
    new_count = len(todo)
    if todo:
        rank, world = (dist.rank, dist.world) if dist is not None else (0, 1)
        mine = todo[rank::world]
        produced = _caption_missing(mine, [samples[first_of[s]] for s in mine], captioner, device,
                                    batch_size, cache if world == 1 else None, progress)
        if world > 1:
            for part in dist.all_gather_object(produced):
                for sha, caption in part.items():
                    cache.put(sha, caption)
        else:
            for sha, caption in produced.items():
                cache.put(sha, caption)
        if dist is None or dist.is_main:
            cache.flush()
    return [cache.get(sha) or "" for sha in shas], {
        "source": "captioner", "captioner": captioner, "decoding": "greedy",
        "max_new_tokens": MAX_NEW_TOKENS, "new": new_count, "cached": len(set(shas)) - new_count,
        "cache_file": str(cache.path)}


def _caption_missing(shas, samples, captioner_name, device, batch_size, cache, progress) -> dict[str, str]:
    from tqdm import tqdm

    from dgs_desktop.scan.decode import DecodeError

    result: dict[str, str] = {}
    if not shas:
        return result
    model = Captioner(captioner_name, device)
    bar = tqdm(total=len(shas), desc="captioning", unit="img", disable=not progress, dynamic_ncols=True)
    for start in range(0, len(shas), batch_size):
        chunk = list(zip(shas[start:start + batch_size], samples[start:start + batch_size]))
        images, keys = [], []
        for sha, sample in chunk:
            try:
                images.append(sample.decode().image)
                keys.append(sha)
            except DecodeError:
                pass  # listed as unreadable by the indexing pass
        if images:
            for sha, caption in zip(keys, model(images)):
                result[sha] = caption
                if cache is not None:
                    cache.put(sha, caption)
        if cache is not None:
            cache.flush(force=False)
        bar.update(len(chunk))
    bar.close()
    return result
