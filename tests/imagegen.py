"""Generator of hostile (and awkward but legitimate) input files for scan tests.

`generate(root)` fills `root` with one file per case and returns a manifest: for every file
the scan must report, what it must say about it (status `ok` with optional note/size checks,
or `error` with a meaningful substring of the error text). Everything is generated from
fixed seeds, so runs are reproducible. Nothing here needs network or a GPU.

Cases (see `CASES` for the full list): zero-byte files, truncated JPEG/PNG, random bytes with
image suffixes, images with a wrong suffix, non-image files, decompression bombs (a tiny PNG
whose hand-written IHDR declares 100000x100000 with a valid CRC, and one just above the scan's
pixel limit), 1x1 and 31x31 images, a large legitimate image, every Pillow mode (1, L, LA, P
with transparency, PA, RGBA, CMYK, I;16, I, F) in PNG/TIFF/JPEG, a 16-bit RGB PNG, animated
GIF and WebP (the first frame is scored and a note says so), EXIF-rotated JPEGs, multi-page
TIFF, a named pipe (a reader that opens it naively blocks forever), an over-size sparse file,
broken symlinks, a symlink to itself, a symlink loop between folders, unicode, spaced,
quoted and newline-containing names, and a tree deeper than
Python's recursion limit.

Unreadable (mode 000) files and folders are created too, but root reads them anyway, so their
expectation depends on who scans them: `permission_denied_possible()` says whether the
current process is subject to file permissions.
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

DEEP_LEVELS = 1100  # > sys.getrecursionlimit() (1000): a recursive walker would crash


@dataclass
class Case:
    """One generated path and what a scan must report for it."""

    path: Path
    category: str
    status: str | None  # "ok", "error", or None when it depends on the scanning user
    error: tuple[str, ...] = ()  # for errors: each substring must appear (case-insensitive)
    note: str = ""  # for ok rows: substring of the notes column
    size: tuple[int, int] | None = None  # for ok rows: (width, height) after EXIF rotation
    row: bool = True  # False: not a file (e.g. a folder-symlink loop); must produce no row
    good: bool = False  # a legitimate image whose probability is compared to a lone scan


@dataclass
class Generated:
    root: Path
    cases: list[Case] = field(default_factory=list)

    def rows(self) -> list[Case]:
        return [case for case in self.cases if case.row]

    def by_name(self, name: str) -> Case:
        for case in self.cases:
            if case.path.name == name:
                return case
        raise KeyError(name)


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def noise_rgb(width: int, height: int, seed: int = 0) -> Image.Image:
    """A textured picture (smooth gradient + noise), so patch entropies differ."""
    rng = _rng(seed)
    xs = (np.arange(width, dtype=np.int32) * 255 // max(width - 1, 1)).astype(np.int16)
    ys = (np.arange(height, dtype=np.int32) * 255 // max(height - 1, 1)).astype(np.int16)
    pixels = rng.integers(0, 64, size=(height, width, 3), dtype=np.uint8).astype(np.int16) - 32
    pixels[..., 0] += xs[None, :]
    pixels[..., 1] += ys[:, None]
    pixels[..., 2] += (xs[None, :] + ys[:, None]) // 2
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(
        ">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)


def png_bomb(width: int, height: int, bit_depth: int = 8, color_type: int = 2) -> bytes:
    """A tiny, well-formed PNG header declaring `width` x `height` (valid CRCs), with a small
    IDAT that holds far less data than declared."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 4096, 9)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def jpeg_with_orientation(image: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(image, "JPEG", quality=90, exif=exif.tobytes())


def animated(fmt: str, frames: int = 3, size: int = 96) -> bytes:
    images = [noise_rgb(size, size, seed=100 + i) for i in range(frames)]
    if fmt == "GIF":
        images = [im.convert("P", palette=Image.Palette.ADAPTIVE) for im in images]
        return encode(images[0], "GIF", save_all=True, append_images=images[1:], duration=50, loop=0)
    return encode(images[0], "WEBP", save_all=True, append_images=images[1:], duration=50, lossless=True)


def mode_images(size: int = 80) -> dict[str, tuple[Image.Image, str]]:
    """One image per Pillow mode, with a format that stores that mode natively."""
    rgb = noise_rgb(size, size, seed=11)
    gray = np.asarray(rgb.convert("L"))
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, size, dtype=np.uint8), (size, 1)))
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    la = rgb.convert("L")
    la.putalpha(alpha)
    pal = rgb.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.info["transparency"] = 0
    pa = pal.convert("PA") if hasattr(Image, "core") else pal
    return {
        "1": (rgb.convert("1"), "PNG"),
        "L": (rgb.convert("L"), "PNG"),
        "LA": (la, "PNG"),
        "P": (pal, "PNG"),
        "PA": (pa, "TIFF"),
        "RGBA": (rgba, "PNG"),
        "CMYK": (rgb.convert("CMYK"), "TIFF"),
        "CMYK-jpeg": (rgb.convert("CMYK"), "JPEG"),
        "YCbCr": (rgb.convert("YCbCr"), "TIFF"),
        "I;16": (Image.fromarray(gray.astype(np.uint16) * 257), "PNG"),
        "I;16-tiff": (Image.fromarray(gray.astype(np.uint16) * 257), "TIFF"),
        "I": (Image.fromarray(gray.astype(np.int32) * 70000 - 2_000_000), "TIFF"),
        "F": (Image.fromarray(gray.astype(np.float32) / 255.0 * 3.5 - 1.0), "TIFF"),
    }


def png_16bit_rgb(size: int = 64) -> bytes:
    """A 16-bit-per-channel RGB PNG, written by hand (Pillow cannot save one)."""
    rgb = np.asarray(noise_rgb(size, size, seed=12)).astype(np.uint16) * 257
    raw = b"".join(b"\x00" + rgb[row].astype(">u2").tobytes() for row in range(size))
    ihdr = struct.pack(">IIBBBBB", size, size, 16, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(raw))
            + png_chunk(b"IEND", b""))


def float_with_nan(size: int = 64) -> bytes:
    array = np.asarray(noise_rgb(size, size, seed=13).convert("L"), dtype=np.float32)
    array[::7, ::5] = np.nan
    array[3, 3] = np.inf
    array[4, 4] = -np.inf
    return encode(Image.fromarray(array), "TIFF")


def permission_denied_possible() -> bool:
    """False when this process ignores file permissions (root with CAP_DAC_OVERRIDE)."""
    import tempfile

    with tempfile.NamedTemporaryFile() as handle:
        os.chmod(handle.name, 0)
        try:
            with open(handle.name, "rb"):
                return False
        except PermissionError:
            return True


def generate(root: str | os.PathLike, large: tuple[int, int] = (4000, 3000),
             max_pixels: int | None = None) -> Generated:
    """Writes every case under `root` (created) and returns what the scan must report.

    `max_pixels` is the scan's pixel limit (for the just-above-the-limit bomb); default: the
    engine's DEFAULT_MAX_PIXELS.
    """
    from dgs_desktop.scan.decode import DEFAULT_MAX_PIXELS, MAX_FILE_BYTES

    max_pixels = max_pixels or DEFAULT_MAX_PIXELS
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    out = Generated(root)

    def add(rel: str, data: bytes | None, category: str, status: str | None, **kw) -> Path:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if data is not None:
            path.write_bytes(data)
        out.cases.append(Case(path, category, status, **kw))
        return path

    picture = noise_rgb(320, 256, seed=1)
    jpeg = encode(picture, "JPEG", quality=92)
    png = encode(picture, "PNG")

    # -- empty, truncated, random, non-images ---------------------------------------------
    for name in ("empty.jpg", "empty.png", "empty"):
        add(f"bad/{name}", b"", "zero-byte", "error", error=("empty", "0 bytes"))
    add("bad/truncated.jpg", jpeg[: len(jpeg) // 2], "truncated", "error", error=("truncated",))
    add("bad/truncated.png", png[: len(png) // 2], "truncated", "error", error=("truncated",))
    add("bad/header-only.png", png[:40], "truncated", "error", error=("truncated",))
    add("bad/header-only.jpg", jpeg[:20], "truncated", "error", error=("truncated",))
    for i, suffix in enumerate((".jpg", ".png", ".gif", ".webp", ".tif", ".bmp")):
        data = _rng(1000 + i).integers(0, 256, 4096, dtype=np.uint8).tobytes()
        add(f"bad/random{suffix}", b"\xde\xad" + data, "random", "error", error=("not an image",))
    add("bad/notes.txt", b"just some notes\nline two\n", "non-image", "error", error=("not an image",))
    add("bad/script.py", b"import os\nprint('hello')\n", "non-image", "error", error=("not an image",))
    add("bad/fake-pdf.jpg", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "non-image", "error",
        error=("not an image",))
    add("bad/archive.png", b"PK\x03\x04" + bytes(60), "non-image", "error", error=("not an image",))
    add("bad/html.webp", b"<!doctype html><html><body>not a picture</body></html>", "non-image", "error",
        error=("not an image",))

    # -- decompression bombs ----------------------------------------------------------------
    add("bombs/bomb-100000x100000.png", png_bomb(100_000, 100_000), "bomb", "error",
        error=("decompression bomb", "10,000,000,000 pixels"))
    side = int(max_pixels ** 0.5) + 2  # just above the scan's own limit (below Pillow's error limit)
    add(f"bombs/bomb-{side}x{side}.png", png_bomb(side, side, color_type=0), "bomb", "error",
        error=("decompression bomb", f"{side}x{side}"))
    add("bombs/bomb-65535x1.gif", b"GIF89a" + struct.pack("<HH", 65535, 65535) + b"\x00\x00\x00"
        + b",\x00\x00\x00\x00" + struct.pack("<HH", 65535, 65535) + b"\x00\x02\x02D\x01\x00;",
        "bomb", "error", error=("decompression bomb",))

    # -- sizes -----------------------------------------------------------------------------
    add("sizes/1x1.png", encode(noise_rgb(1, 1, seed=2), "PNG"), "tiny", "ok", size=(1, 1), good=True)
    add("sizes/31x31.png", encode(noise_rgb(31, 31, seed=3), "PNG"), "tiny", "ok", size=(31, 31), good=True)
    add("sizes/1x500.png", encode(noise_rgb(1, 500, seed=4), "PNG"), "tiny", "ok", size=(1, 500), good=True)
    width, height = large
    add(f"sizes/large-{width}x{height}.jpg", encode(noise_rgb(width, height, seed=5), "JPEG", quality=85),
        "large", "ok", size=(width, height), good=True)

    # -- every mode ------------------------------------------------------------------------
    for mode, (image, fmt) in mode_images().items():
        ext = {"PNG": "png", "TIFF": "tif", "JPEG": "jpg"}[fmt]
        note = {"LA": "alpha", "RGBA": "alpha", "P": "alpha", "PA": "alpha", "F": "rescaled"}.get(mode, "")
        add(f"modes/mode-{mode.replace(';', '_')}.{ext}", encode(image, fmt), "mode", "ok", note=note,
            size=image.size, good=True)
    add("modes/rgb16.png", png_16bit_rgb(), "mode", "ok", size=(64, 64), good=True)
    add("modes/float-nan-inf.tif", float_with_nan(), "mode", "ok", note="rescaled", size=(64, 64), good=True)

    # -- containers: animation, multi-page, EXIF -------------------------------------------
    add("anim/animated.gif", animated("GIF"), "animated", "ok", note="first frame of 3", good=True)
    add("anim/animated.webp", animated("WEBP"), "animated", "ok", note="first frame of 3", good=True)
    pages = [noise_rgb(64, 48, seed=20 + i) for i in range(2)]
    add("anim/multipage.tif", encode(pages[0], "TIFF", save_all=True, append_images=pages[1:]), "tiff", "ok",
        note="first frame of 2", size=(64, 48), good=True)
    landscape = noise_rgb(120, 80, seed=6)
    for orientation, size in ((3, (120, 80)), (6, (80, 120)), (8, (80, 120))):
        add(f"exif/orientation-{orientation}.jpg", jpeg_with_orientation(landscape, orientation), "exif", "ok",
            note=f"EXIF orientation {orientation}", size=size, good=True)
    add("exif/tiff-lzw.tiff", encode(landscape, "TIFF", compression="tiff_lzw"), "tiff", "ok", size=(120, 80),
        good=True)

    # -- wrong suffixes ---------------------------------------------------------------------
    add("suffix/png-named.jpg", png, "wrong-suffix", "ok", note="suffix", size=(320, 256), good=True)
    add("suffix/jpeg-named.png", jpeg, "wrong-suffix", "ok", note="suffix", size=(320, 256), good=True)
    add("suffix/jpeg-no-suffix", jpeg, "wrong-suffix", "ok", size=(320, 256), good=True)
    add("suffix/gif-named.txt", encode(noise_rgb(40, 40, seed=7).convert("P"), "GIF"), "wrong-suffix", "ok",
        note="suffix", size=(40, 40), good=True)

    # -- names ------------------------------------------------------------------------------
    for name in ("ünïcødé 画像 🖼.png", "with space .jpg", "quote\"comma,semi;colon.png", "new\nline.png",
                 " leading-space.png", "-dash-first.png"):
        add(f"names/{name}", jpeg if name.endswith(".jpg") else png, "name", "ok", size=(320, 256), good=True)
    # (A name that is not valid UTF-8 is tested on its own in test_hostile_inputs.py: the CSV
    # writer cannot store it yet.)

    # -- special files ----------------------------------------------------------------------
    fifo = root / "special" / "named-pipe.jpg"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)
    out.cases.append(Case(fifo, "special", "error", error=("not a regular file", "pipe")))
    sparse = root / "special" / "sparse-huge.png"
    with open(sparse, "wb") as handle:
        handle.write(png[:64])
        handle.truncate(MAX_FILE_BYTES + 4096)  # sparse: no disk space used
    out.cases.append(Case(sparse, "special", "error", error=("too large",)))

    # -- symlinks ---------------------------------------------------------------------------
    links = root / "links"
    links.mkdir()
    os.symlink("does-not-exist.jpg", links / "broken.jpg")
    out.cases.append(Case(links / "broken.jpg", "symlink", "error", error=("broken symbolic link",)))
    os.symlink("self-loop.png", links / "self-loop.png")
    out.cases.append(Case(links / "self-loop.png", "symlink", "error", error=("symbolic link", "loop")))
    os.symlink("ping.png", links / "pong.png")
    os.symlink("pong.png", links / "ping.png")
    out.cases.append(Case(links / "ping.png", "symlink", "error", error=("symbolic link", "loop")))
    out.cases.append(Case(links / "pong.png", "symlink", "error", error=("symbolic link", "loop")))
    (links / "sub").mkdir()
    os.symlink("..", links / "sub" / "up-loop")  # folder loop: must not be walked twice
    out.cases.append(Case(links / "sub" / "up-loop", "symlink", None, row=False))

    # -- deep tree --------------------------------------------------------------------------
    deep = root / "deep"
    current_str = str(deep)
    os.mkdir(current_str)
    for _ in range(DEEP_LEVELS):  # os.makedirs and Path.mkdir(parents=True) recurse
        current_str = os.path.join(current_str, "d")
        os.mkdir(current_str)
    current = Path(current_str)
    (current / "bottom.png").write_bytes(encode(noise_rgb(40, 40, seed=8), "PNG"))
    out.cases.append(Case(current / "bottom.png", "deep", "ok", size=(40, 40), good=True))

    # -- unreadable (root reads these anyway) ----------------------------------------------
    locked = add("locked/no-permission.png", png, "permission", None)
    os.chmod(locked, 0)
    locked_dir = root / "locked" / "no-permission-folder"
    locked_dir.mkdir()
    (locked_dir / "inside.png").write_bytes(png)
    os.chmod(locked_dir, 0)
    if permission_denied_possible():
        out.cases[-1].status, out.cases[-1].error = "error", ("permission denied",)
        out.cases.append(Case(locked_dir, "permission", "error", error=("folder", "could not be read")))
    else:
        out.cases[-1].status = "ok"
        out.cases[-1].good = True
        out.cases.append(Case(locked_dir / "inside.png", "permission", "ok", good=True))
    return out


def _iter_tree(root: str) -> list[tuple[str, bool]]:
    """(path, is_dir) for everything under `root`, parents before children, without recursion
    (os.walk and shutil.rmtree recurse in Python 3.11 and fail on the deep tree)."""
    found, stack = [], [root]
    while stack:
        directory = stack.pop()
        try:
            os.chmod(directory, 0o755)
            entries = list(os.scandir(directory))
        except OSError:
            continue
        for entry in entries:
            is_dir = entry.is_dir(follow_symlinks=False)
            found.append((entry.path, is_dir))
            if is_dir:
                stack.append(entry.path)
    return found


def restore_permissions(root: str | os.PathLike) -> None:
    """Makes the generated tree readable and deletable again (mode 000 files and folders)."""
    for path, is_dir in _iter_tree(str(root)):
        if not os.path.islink(path):
            try:
                os.chmod(path, 0o755 if is_dir else 0o644)
            except OSError:
                pass


def remove_tree(root: str | os.PathLike) -> None:
    """Deletes a generated tree, however deep (pytest's own clean-up would recurse)."""
    if not os.path.lexists(root):
        return
    entries = _iter_tree(str(root))
    for path, is_dir in reversed(entries):  # children before their parents
        try:
            os.rmdir(path) if is_dir else os.unlink(path)
        except OSError:
            pass
    os.rmdir(root)


def good_images(count: int, root: str | os.PathLike, size: int = 64, fmt: str = "PNG") -> list[Path]:
    """`count` small distinct legitimate images (for kill/resume, memory and evidence tests)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    rng = _rng(4242)
    base = np.asarray(noise_rgb(size, size, seed=9), dtype=np.int16)
    for i in range(count):
        array = np.clip(base + rng.integers(-40, 40, size=base.shape), 0, 255).astype(np.uint8)
        path = root / f"img{i:05d}.{fmt.lower()}"
        Image.fromarray(array).save(path, format=fmt)
        paths.append(path)
    return paths


# ------------------------------------------------------- photo-like images (benchmarks)
def photo_like(rng: np.random.Generator, width: int = 1024, height: int = 1024) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(0.002, 0.02, 2).tolist() + [rng.uniform(0, 6)]
        channels.append(110 + 70 * np.sin(x * fx + phase) * np.cos(y * fy))
    base = np.stack(channels, axis=2) + rng.normal(0, 6, (height, width, 3))
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(25):
        x0, y0 = rng.integers(0, width), rng.integers(0, height)
        x1, y1 = x0 + rng.integers(20, 300), y0 + rng.integers(20, 300)
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=color)
    return image.filter(ImageFilter.GaussianBlur(0.8))


def write_jpegs(folder: Path, count: int, seed: int = 0, size: int = 1024) -> list[Path]:
    """`count` distinct ~1 MP JPEGs (a few base images re-encoded with a varying crop)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    bases = [photo_like(rng, size + 32, size + 32) for _ in range(min(count, 8))]
    paths = []
    for index in range(count):
        offset = index % 32
        image = bases[index % len(bases)].crop((offset, offset, offset + size, offset + size))
        path = folder / f"img{index:05d}.jpg"
        image.save(path, quality=90)
        paths.append(path)
    return paths
