"""C2PA Content Credentials through c2pa-python: present or not, validation state, signer,
claim generator, and whether the manifest declares AI generation.

Read from the bytes the scan already holds, offline: remote manifests and OCSP are never
fetched (a forensic workstation must not call out, and the file's claim is what is
examined). No trust list is configured, so a cryptographically valid manifest from an
unknown signer reads "valid, signer not on a trust list" rather than "trusted".
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field

from .fingerprints import AI_SOURCE_TYPES, CAPTURE_SOURCE_TYPES, source_type_code
from .metadata import clip_text

log = logging.getLogger(__name__)

_MIME = {"JPEG": "image/jpeg", "MPO": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "TIFF": "image/tiff",
         "HEIF": "image/heif", "AVIF": "image/avif", "GIF": "image/gif"}
_OFFLINE = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
UNTRUSTED_SIGNER = "signingCredential.untrusted"


@dataclass
class C2paInfo:
    present: bool = False
    validation_state: str = ""  # c2pa's: Invalid, Valid or Trusted; "" when absent or unreadable
    failures: list[str] = field(default_factory=list)  # validation failure codes
    signer: str = ""  # certificate common name
    issuer: str = ""  # certificate organisation
    signed_at: str = ""
    claim_generator: str = ""
    title: str = ""
    ai_source_types: list[str] = field(default_factory=list)  # AI digitalSourceType codes declared
    capture_source_types: list[str] = field(default_factory=list)  # camera digitalSourceType codes declared
    actions: list[str] = field(default_factory=list)
    error: str = ""  # a manifest seems present but could not be read
    manifest_json: str = ""  # the active manifest, for the panel (bounded)

    @property
    def declares_ai(self) -> bool:
        return bool(self.ai_source_types)

    @property
    def is_valid(self) -> bool:
        """c2pa validated the manifest (Valid or Trusted): its claims are what the signer signed."""
        return self.present and not self.error and self.validation_state.lower() in ("valid", "trusted")

    @property
    def declares_capture(self) -> bool:
        return bool(self.capture_source_types) and not self.declares_ai

    @property
    def state_text(self) -> str:
        """'valid, signer not on a trust list', 'invalid (assertion.dataHash.mismatch)', ..."""
        if self.error:
            return f"unreadable ({self.error})"
        if not self.present:
            return "none"
        state = (self.validation_state or "unknown").lower()
        other = [code for code in self.failures if code != UNTRUSTED_SIGNER]
        if state == "valid" and UNTRUSTED_SIGNER in self.failures:
            state = "valid, signer not on a trust list"
        if other:
            state += f" ({', '.join(other[:4])})"
        return state


def _generator(manifest: dict) -> str:
    infos = manifest.get("claim_generator_info")
    if isinstance(infos, list) and infos:
        parts = []
        for info in infos[:3]:
            if isinstance(info, dict):
                parts.append(" ".join(str(info[k]) for k in ("name", "version") if info.get(k)))
        if any(parts):
            return clip_text("; ".join(p for p in parts if p), 200)
    return clip_text(manifest.get("claim_generator", ""), 200)


def _actions(manifest: dict) -> list[dict]:
    actions: list[dict] = []
    for assertion in manifest.get("assertions") or []:
        if isinstance(assertion, dict) and str(assertion.get("label", "")).startswith("c2pa.actions"):
            data = assertion.get("data") or {}
            actions.extend(a for a in (data.get("actions") or []) if isinstance(a, dict))
    return actions


def summarize_manifest_store(store: dict, info: C2paInfo) -> None:
    """Fills `info` from c2pa's manifest-store JSON (what `Reader.json()` returns)."""
    manifests = store.get("manifests") or {}
    active = manifests.get(store.get("active_manifest", "")) or {}
    info.present = bool(manifests)
    info.validation_state = str(store.get("validation_state", ""))
    results = (store.get("validation_results") or {}).get("activeManifest") or {}
    failures = results.get("failure") if results else store.get("validation_status")
    info.failures = [str(f.get("code", "")) for f in (failures or []) if isinstance(f, dict)]
    signature = active.get("signature_info") or {}
    info.signer = clip_text(signature.get("common_name", ""), 200)
    info.issuer = clip_text(signature.get("issuer", ""), 200)
    info.signed_at = clip_text(signature.get("time", ""), 80)
    info.claim_generator = _generator(active)
    info.title = clip_text(active.get("title", ""), 200)
    for action in _actions(active):
        code = source_type_code(str(action.get("digitalSourceType", "")))
        info.actions.append(clip_text(action.get("action", ""), 80) + (f" [{code}]" if code else ""))
        if code in AI_SOURCE_TYPES and code not in info.ai_source_types:
            info.ai_source_types.append(code)
        if code in CAPTURE_SOURCE_TYPES and code not in info.capture_source_types:
            info.capture_source_types.append(code)
    info.manifest_json = clip_text(json.dumps(active, indent=1, ensure_ascii=False), 20000)


def read_c2pa(data: bytes, image_format: str = "") -> C2paInfo:
    """The file's Content Credentials. Cheap when there are none: c2pa is only asked when the
    bytes contain a JUMBF box and the label c2pa at all. Never raises."""
    info = C2paInfo()
    if b"c2pa" not in data or b"jumb" not in data:  # a manifest store is a JUMBF box labelled c2pa
        return info
    import c2pa as c2pa_lib

    try:

        with c2pa_lib.Context.from_dict(_OFFLINE) as context:
            reader = c2pa_lib.Reader.try_create(_MIME.get(image_format.upper()), io.BytesIO(data), context=context)
            if reader is None:
                return info
            with reader:
                store = json.loads(reader.json())
        summarize_manifest_store(store if isinstance(store, dict) else {}, info)
    except c2pa_lib.C2paError.NotSupported:
        info.present, info.error = True, f"C2PA data in a {image_format or 'file'} format c2pa cannot read"
    except Exception as exc:  # noqa: BLE001 - a damaged manifest is a finding, not a crash
        log.debug("C2PA manifest unreadable", exc_info=True)
        info.present = True
        info.error = clip_text(f"{type(exc).__name__}: {exc}", 200)
    return info
