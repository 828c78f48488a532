"""Generated inputs for the provenance, format and report tests (no network, fixed seeds).

- `signing_chain()`: a self-made ES256 chain (root CA -> signer) that c2pa-rs accepts for
  signing: the leaf is not a CA, has digitalSignature and the emailProtection EKU, and is
  signed by a separate CA (c2pa refuses self-signed leaves).
- `sign_c2pa(data, mime, ai=True)`: the image bytes with an embedded C2PA manifest whose
  action declares trainedAlgorithmicMedia (or digitalCapture).
- `sample_files(folder)`: one file per provenance case, with what the summary must say.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

import dgs_desktop.scan.decode  # noqa: F401 - registers pillow-heif, so HEIF can be encoded too

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
SIGNER_NAME = "DGS Test Signer"
SIGNER_ORG = "DGS Test Lab"
CLAIM_GENERATOR = "DGS test generator"


def picture(width: int = 160, height: int = 120, seed: int = 0) -> Image.Image:
    """A textured RGB image (patch entropies differ, so the mosaic is meaningful)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = np.stack([x * 255 // max(1, width - 1), y * 255 // max(1, height - 1), (x + y) % 256], axis=2)
    noise = rng.integers(0, 60, size=(height, width, 3))
    noise[:, : width // 2] = 0  # left half smooth, right half detailed
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


@lru_cache(maxsize=1)
def signing_chain() -> tuple[str, str]:
    """(certificate chain PEM: leaf then CA, private key PEM) for ES256 signing."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.timezone.utc)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, SIGNER_ORG)])

    def builder(subject, issuer, public_key):
        return (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
                .not_valid_after(now + dt.timedelta(days=365))
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (builder(name("DGS Test Root CA"), name("DGS Test Root CA"), ca_key.public_key())
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (builder(name(SIGNER_NAME), ca.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in (leaf, ca))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return pem, key_pem


def sign_c2pa(data: bytes, mime: str = "image/jpeg", ai: bool = True) -> bytes:
    import c2pa

    certs, key = signing_chain()
    source_type = IPTC + ("trainedAlgorithmicMedia" if ai else "digitalCapture")
    manifest = {"claim_generator_info": [{"name": CLAIM_GENERATOR, "version": "1.0"}], "title": "sample",
                "assertions": [{"label": "c2pa.actions", "data": {"actions": [
                    {"action": "c2pa.created", "digitalSourceType": source_type}]}}]}
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, certs.encode(), key.encode(), None))
    with signer, c2pa.Builder(json.dumps(manifest)) as builder:
        out = io.BytesIO()
        builder.sign(signer, mime, io.BytesIO(data), out)
    return out.getvalue()


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def xmp_packet(properties: dict[str, str]) -> bytes:
    attributes = " ".join(f'{key}="{value}"' for key, value in properties.items())
    return ('<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
            '<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
            'xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
            f'{attributes}/></rdf:RDF></x:xmpmeta>').encode()


def camera_exif(orientation: int = 1, software: str = "") -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F], exif[0x0110] = "Apple", "iPhone 15 Pro"
    exif[0x0112] = orientation
    if software:
        exif[0x0131] = software
    exif[0x8825] = {1: "S", 2: (33.0, 51.0, 54.0), 3: "E", 4: (151.0, 12.0, 36.0)}
    sub = exif.get_ifd(0x8769)
    sub[0x9003] = "2024:05:01 10:20:30"
    sub[0xA434] = "iPhone 15 Pro back triple camera 6.86mm f/1.78"
    return exif


def png_with_text(chunks: dict[str, str], seed: int = 1) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    return encoded(picture(seed=seed), "PNG", pnginfo=info)


def png_with_xmp(packet: bytes | str, width: int = 64, height: int = 64) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", packet if isinstance(packet, str) else packet.decode())
    return encoded(picture(width, height), "PNG", pnginfo=info)


WEBUI_PARAMETERS = ("a lighthouse at dusk, oil painting\nNegative prompt: blurry\nSteps: 28, Sampler: DPM++ 2M Karras, "
                    "CFG scale: 7, Seed: 1234, Size: 512x512, Model: sd_xl_base_1.0")


def sample_files(folder: Path) -> dict[str, tuple[bytes, list[str]]]:
    """Writes the provenance cases into `folder`; returns name -> (bytes, substrings the
    one-line summary must contain)."""
    comfy = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}})
    cases = {
        "webui.png": (png_with_text({"parameters": WEBUI_PARAMETERS}), ["Stable Diffusion WebUI", "'parameters'"]),
        "comfyui.png": (png_with_text({"prompt": comfy, "workflow": json.dumps({"nodes": []})}, seed=2),
                        ["ComfyUI", "'prompt'"]),
        "novelai.png": (png_with_text({"Software": "NovelAI", "Source": "Stable Diffusion XL C1E1DE52",
                                       "Comment": json.dumps({"steps": 28, "sampler": "k_euler"})}, seed=3),
                        ["NovelAI"]),
        "invokeai.png": (png_with_text({"invokeai_metadata": json.dumps({"generation_mode": "txt2img"})}, seed=4),
                         ["InvokeAI", "invokeai_metadata"]),
        "photo.jpg": (encoded(picture(seed=5), "JPEG", quality=87, exif=camera_exif(software="Adobe Photoshop 25.1")),
                      ["camera Apple iPhone 15 Pro", "Adobe Photoshop", "GPS", "JPEG q~87", "taken 2024:05:01"]),
        "iptc_ai.jpg": (encoded(picture(seed=6), "JPEG", quality=90, xmp=xmp_packet(
            {"Iptc4xmpExt:DigitalSourceType": IPTC + "trainedAlgorithmicMedia", "xmp:CreatorTool": "Midjourney"})),
            ["declared AI: IPTC DigitalSourceType trainedAlgorithmicMedia", "generator: Midjourney"]),
        "c2pa_ai.jpg": (sign_c2pa(encoded(picture(seed=7), "JPEG", quality=90)),
                        ["C2PA valid, signer not on a trust list", SIGNER_NAME, CLAIM_GENERATOR,
                         "declares AI generation (trainedAlgorithmicMedia)"]),
        "plain.png": (encoded(picture(seed=8), "PNG"), ["no metadata"]),
    }
    for name, (data, _) in cases.items():
        (folder / name).write_bytes(data)
    return cases
