"""`dgs-desktop-train publish CKPT --repo ORG/NAME`: a checkpoint and its model card on the hub.

The checkpoint is verified first (every file against the manifest's sha256). One commit then
uploads exactly the files the manifest lists, the manifest, and a generated model card
(`README.md`): hub metadata (license, tags, base model, the hub's `model-index` with the
headline numbers) plus a `dgs_desktop` block with every evaluation table given with `--eval`,
which the app's model manager reads back (`dgs_desktop.detector.modelcard`). Nothing else in
the folder is uploaded, and nothing in it is changed.

Uploads go through huggingface_hub (`create_repo`, `create_branch`, `create_commit`), with its
token handling (`hf auth login` or HF_TOKEN), Xet or LFS transfer and progress bars.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from dgs_desktop.detector.hubaccess import (
    CHECKPOINT_SCHEME,
    DATASET_SCHEME,
    RepoSpec,
    is_offline,
    repo_id_problem,
)
from dgs_desktop.detector.manifest import MANIFEST_NAME, Checkpoint, read_checkpoint
from dgs_desktop.detector.modelcard import CARD_KEY, CARD_NAME, METRIC_KEYS, format_percent, scoring_line
from dgs_desktop.errors import CheckpointError, UsageError, one_line

from .errors import TrainError
from .facts import FACT_COLUMNS

DEFAULT_LICENSE = "apache-2.0"
# Hub ids of the base weights open_clip loads for an architecture/tag (for the card's base_model).
HUB_BASE_MODELS = {("ViT-L-14", "openai"): "openai/clip-vit-large-patch14",
                   ("ViT-L-14-quickgelu", "openai"): "openai/clip-vit-large-patch14",
                   ("ViT-B-16", "openai"): "openai/clip-vit-base-patch16"}
EVAL_COLUMNS = ("subset", "n_real", "n_fake", "acc", "r_acc", "f_acc", "ap")
SUMMARY_ROWS = ("mean", "paper_table")


@dataclass
class EvalTable:
    """One `dgs-desktop-train evaluate --csv` table (fractions 0-1; None where not defined)."""

    name: str
    rows: list[dict]
    mean: dict | None
    paper_table: dict | None
    perturbation: str = ""
    note: str = ""
    scoring: dict[str, str] = field(default_factory=dict)  # trainer.facts: precision, device, versions, ...

    def to_card(self) -> dict:
        card = {"name": self.name, "rows": self.rows, "mean": self.mean, "paper_table": self.paper_table,
                "perturbation": self.perturbation, "note": self.note}
        return {**card, "scoring": self.scoring} if self.scoring else card


def _cell_number(text: str, where: str) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise TrainError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        return None
    if not 0.0 <= value <= 1.0:
        raise TrainError(f"{where}: {value} is outside 0-1 (is this an evaluate --csv table?)")
    return value


def _cell_count(text: str, where: str) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        raise TrainError(f"{where}: {text!r} is not a whole number") from None


def _scoring_facts(records: list[dict], path: Path) -> dict[str, str]:
    """The scoring facts every row repeats ({} for a table written before they were recorded)."""
    seen: dict[tuple, int] = {}
    for number, record in enumerate(records, start=2):
        seen.setdefault(tuple((record.get(k) or "").strip() for k in FACT_COLUMNS), number)
    if len(seen) > 1:
        raise TrainError(f"{path} line {list(seen.values())[1]}: the scoring facts differ from line 2 "
                         f"(precision, device, decoding, versions): one table must come from one evaluate run")
    values = next(iter(seen), ())
    return {k: v for k, v in zip(FACT_COLUMNS, values) if v}


def read_eval_csv(spec: str) -> EvalTable:
    """`[NAME=]PATH` of an evaluate --csv table; NAME defaults to the file name without suffix."""
    name, sep, path_text = spec.partition("=")
    if not sep or os.path.exists(spec):
        name, path_text = "", spec
    path = Path(path_text).expanduser()
    name = name.strip() or path.stem
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in EVAL_COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise TrainError(f"{path} is not an evaluate --csv table (no column(s) {', '.join(missing)})")
            records = list(reader)
    except FileNotFoundError:
        raise TrainError(f"evaluation table {path} does not exist") from None
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TrainError(f"cannot read evaluation table {path}: {exc}") from None
    rows, summaries, perturbation = [], {}, set()
    for number, record in enumerate(records, start=2):
        where = f"{path} line {number}"
        row = {"subset": record["subset"], "n_real": _cell_count(record["n_real"], where),
               "n_fake": _cell_count(record["n_fake"], where)}
        row.update({key: _cell_number(record[key], where) for key in METRIC_KEYS})
        if record["subset"] in SUMMARY_ROWS:
            summaries[record["subset"]] = row
        else:
            rows.append(row)
        backend = (record.get("blur_backend") or "").strip()
        for column, label in (("blur_sigma", "Gaussian blur sigma={}" + (f" ({backend})" if backend else "")),
                              ("jpeg_quality", "JPEG quality={}")):
            if (record.get(column) or "").strip():
                perturbation.add(label.format(record[column].strip()))
    if not rows:
        raise TrainError(f"evaluation table {path} has no subset rows")
    return EvalTable(name=name, rows=rows, mean=summaries.get("mean"), paper_table=summaries.get("paper_table"),
                     perturbation=", ".join(sorted(perturbation)), scoring=_scoring_facts(records, path))


# ----------------------------------------------------------------------------- the card
def _get(mapping, *keys, default=None):
    for key in keys:
        if not isinstance(mapping, dict) or key not in mapping:
            return default
        mapping = mapping[key]
    return mapping


def _training_summary(provenance: dict) -> dict:
    counts = provenance.get("counts") if isinstance(provenance.get("counts"), dict) else {}
    real = sum(int(c.get("real", 0)) for c in counts.values() if isinstance(c, dict))
    fake = sum(int(c.get("fake", 0)) for c in counts.values() if isinstance(c, dict))
    data = provenance.get("data") if isinstance(provenance.get("data"), dict) else {}
    source = (f"{RepoSpec(DATASET_SCHEME, data['repo'], data.get('commit', '')[:12])} split={data.get('split')}"
              if data.get("repo") else data.get("path") or provenance.get("data_root") or "unknown")
    return {"source": source, "classes": data.get("classes") or provenance.get("classes"),
            "images": provenance.get("images", real + fake), "real": real, "fake": fake,
            "per_subset": counts, "unreadable_skipped": provenance.get("unreadable_skipped", 0)}


def _eval_results(evaluations: list[EvalTable]) -> list:
    """The hub's `model-index`: each table's headline accuracy and AP, in percent, as `EvalResult`s."""
    from huggingface_hub import EvalResult

    results = []
    for table in evaluations:
        headline = table.paper_table or table.mean or {}
        # the perturbation is the dataset's config, so a blurred run of a test set stays its own result
        dataset = {"dataset_type": table.name, "dataset_config": table.perturbation or None,
                   "dataset_name": table.name + (f" ({table.perturbation})" if table.perturbation else "")}
        for metric_type, key, name in (("accuracy", "acc", "mAcc" if table.paper_table else "mean Acc"),
                                       ("average_precision", "ap", "mAP")):
            if headline.get(key) is not None:
                results.append(EvalResult(task_type="image-classification", task_name="AI-generated image detection",
                                          metric_type=metric_type, metric_name=name,
                                          metric_value=round(100 * headline[key], 2), **dataset))
    return results


def card_metadata(checkpoint: Checkpoint, repo_id: str, evaluations: list[EvalTable], license_id: str):
    """The card's metadata (huggingface_hub `ModelCardData`): the hub's keys and the `dgs_desktop` block."""
    from huggingface_hub import ModelCardData

    manifest = checkpoint.manifest
    provenance = manifest.get("provenance") or {}
    base = manifest.get("base_weights") or {}
    architecture = manifest.get("architecture")
    data = provenance.get("data") if isinstance(provenance.get("data"), dict) else {}
    results = _eval_results(evaluations)
    block = {
        "checkpoint_sha256": checkpoint.sha256,
        "architecture": architecture,
        "base_weights": base.get("id"),
        "base_weights_bundled": bool(base.get("bundled")),
        "lora": manifest.get("lora"),
        "threshold": manifest.get("threshold"),
        "surgery": provenance.get("surgery"),
        "training": _training_summary(provenance),
        "evaluations": [t.to_card() for t in evaluations],
    }
    return ModelCardData(license=license_id, library_name="dgs-desktop", pipeline_tag="image-classification",
                         tags=["ai-generated-image-detection", "image-forensics", "dgs-net", "clip", "lora"],
                         base_model=HUB_BASE_MODELS.get((architecture, base.get("id"))),
                         datasets=[data["repo"]] if data.get("repo") else None,
                         model_name=repo_id.split("/")[-1] if results else None, eval_results=results or None,
                         **{CARD_KEY: block})


def _pct_row(row: dict) -> str:
    counts = " | ".join("" if row.get(k) is None else str(row[k]) for k in ("n_real", "n_fake"))
    return f"| {row.get('subset', '')} | {counts} | " + " | ".join(format_percent(row.get(k)) for k in METRIC_KEYS) + " |"


def card_text(checkpoint: Checkpoint, repo_id: str, evaluations: list[EvalTable],
              license_id: str = DEFAULT_LICENSE) -> str:
    """The whole README.md: YAML front matter and a short, true description."""
    metadata = card_metadata(checkpoint, repo_id, evaluations, license_id)
    block = metadata[CARD_KEY]
    training = block["training"]
    surgery = block.get("surgery") or {}
    hyper = _get(checkpoint.manifest, "provenance", "hyperparameters", default={}) or {}
    lora = block.get("lora") or {}
    spec = RepoSpec(CHECKPOINT_SCHEME, repo_id)
    lines = [
        "---", metadata.to_yaml(), "---", "",
        f"# {repo_id.split('/')[-1]}", "",
        "A DGS-Net detector of AI-generated images (CLIP image encoder + LoRA + linear head, trained with "
        "the paper's gradient surgery, Sections 3-5) for DGS Desktop. It gives each image a probability that "
        "it is AI-generated.", "",
        "## Use", "",
        "```",
        f"dgs-desktop scan FOLDER --checkpoint {spec} --csv results.csv",
        "```", "",
        f"or, in the window (`dgs-desktop`), *Model → Download* `{spec}`. The download is verified "
        "file by file against the sha256 values in `dgs_checkpoint.json`.", "",
        "## Model", "",
        "| | |", "|---|---|",
        f"| architecture | {block['architecture']} |",
        f"| base weights | {block['base_weights']}{' (bundled)' if block['base_weights_bundled'] else ''} |",
        f"| LoRA | r={lora.get('r')}, alpha={lora.get('alpha')}, {lora.get('scaling_rule', '')}, on "
        f"{', '.join(lora.get('targets') or [])} |",
        f"| decision threshold | fake when P(fake) > {block['threshold']} |",
        f"| checkpoint manifest sha256 | `{checkpoint.sha256}` |", "",
        "## Training", "",
        f"- data: {training['source']}" + (f", classes {', '.join(training['classes'])}"
                                           if training.get("classes") else ""),
        f"- images: {training['images']} ({training['real']} real, {training['fake']} fake"
        + (f"; {training['unreadable_skipped']} unreadable skipped" if training.get("unreadable_skipped") else "")
        + ")",
        f"- recipe: {hyper.get('optimizer', 'Adam')}, lr {hyper.get('lr')}, batch {hyper.get('batch_size')}, "
        f"{hyper.get('epochs')} epoch(s), {hyper.get('steps')} step(s); stage-1 probe {hyper.get('probe_epochs')} "
        f"epoch(s)",
        f"- gradient surgery: mode `{surgery.get('mode')}`, lambda {surgery.get('lambda')}, orthogonal "
        f"suppression {'on' if surgery.get('orthogonal_suppression', True) else 'off'}, prior alignment "
        f"{'on' if surgery.get('prior_alignment', True) else 'off'}", "",
    ]
    if evaluations:
        lines += ["## Evaluation", ""]
        for table in evaluations:
            lines += [f"### {table.name}" + (f" ({table.perturbation})" if table.perturbation else ""), ""]
            if table.note:
                lines += [table.note, ""]
            if table.scoring:
                line = scoring_line(table.scoring)
                lines += [line[:1].upper() + line[1:] + ".", ""]
            lines += ["| subset | real | fake | Acc | R.Acc | F.Acc | AP |", "|---|---:|---:|---:|---:|---:|---:|"]
            lines += [_pct_row(row) for row in table.rows]
            if table.mean:
                lines.append(_pct_row({**table.mean, "subset": "**mean**"}))
            if table.paper_table:
                lines.append(_pct_row({**table.paper_table, "subset": "**paper table (mAcc / mA.P.)**"}))
            lines.append("")
        lines += ["Percentages; Acc/R.Acc/F.Acc at the threshold above, AP threshold-free. The paper-table row "
                  "averages one R.Acc column and each subset's F.Acc, as the paper's Tables 1 and 3 do.", ""]
    lines += [
        "## Intended use", "",
        "Triage of images by forensic analysts and researchers: which images deserve a closer look. A score is "
        "evidence to weigh with other evidence (provenance, metadata, context), not a verdict on its own.", "",
        "## Limitations", "",
        "- Accuracy drops on generators, post-processing and domains unlike the training data; the evaluation "
        "tables above hold for their test sets only (e.g. the paper reports low accuracy on DALLE-3 and on "
        "images shared through social networks).",
        "- Recompression, resizing and screenshots change the evidence the detector relies on.",
        "- Images smaller than 224x224 fill fewer distinct patches and are less reliable (the app says so).",
        "- A fake probability is not a calibrated likelihood for any particular case.", "",
        "## License", "",
        f"`{license_id}` for these weights (as published by the uploader). The base CLIP weights keep their own "
        "license.", "",
    ]
    return "\n".join(lines)


# ----------------------------------------------------------------------------- upload
@dataclass
class PublishResult:
    repo_id: str
    revision: str
    commit: str
    url: str
    files: list[str]

    @property
    def spec(self) -> str:
        return str(RepoSpec(CHECKPOINT_SCHEME, self.repo_id, self.commit))


def _upload_error(exc: BaseException, repo_id: str, endpoint: str) -> TrainError:
    from huggingface_hub import errors

    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, errors.LocalTokenNotFoundError) or status == 401:
        return TrainError(f"the hub at {endpoint} needs a write token to publish {repo_id}: log in with "
                          f"`hf auth login` or set HF_TOKEN")
    if status == 403:
        return TrainError(f"the token may not write to {repo_id} (HTTP 403): check the organisation and the "
                          f"token's permissions")
    if isinstance(exc, errors.RepositoryNotFoundError):
        return TrainError(f"repository {repo_id} was not found on {endpoint} and could not be created")
    if isinstance(exc, errors.HfHubHTTPError):
        return TrainError(f"the hub at {endpoint} refused the upload to {repo_id}: "
                          f"{one_line(exc)}")
    return TrainError(f"uploading to {repo_id} failed ({type(exc).__name__}: {one_line(exc)}); "
                      f"run the command again: files already uploaded are not sent twice")


def publish(checkpoint_dir: str | os.PathLike, repo_id: str, *, revision: str | None = None, private: bool = False,
            eval_csvs: list[str] = (), license_id: str = DEFAULT_LICENSE, message: str | None = None,
            token: str | None = None) -> PublishResult:
    """Verifies the checkpoint and uploads it with its model card in one commit."""
    import huggingface_hub
    from huggingface_hub import CommitOperationAdd, constants

    problem = repo_id_problem(repo_id)
    if problem:
        raise UsageError(f"--repo {repo_id!r} is not a valid repository name ({problem}); write it as ORG/NAME")
    try:
        checkpoint = read_checkpoint(checkpoint_dir)
    except CheckpointError as exc:
        raise CheckpointError(f"not publishing: {exc}") from None
    evaluations = [read_eval_csv(spec) for spec in eval_csvs]
    card = card_text(checkpoint, repo_id, evaluations, license_id).encode("utf-8")
    names = sorted(checkpoint.manifest["files"]) + [MANIFEST_NAME]
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(checkpoint.directory / name))
                  for name in names]
    operations.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card))
    endpoint = constants.ENDPOINT
    if is_offline():
        raise UsageError("publishing needs the network, but HF_HUB_OFFLINE is set")
    api = huggingface_hub.HfApi(token=token)
    branch = revision or constants.DEFAULT_REVISION
    try:
        api.create_repo(repo_id, private=private, exist_ok=True)
        if branch != constants.DEFAULT_REVISION:
            api.create_branch(repo_id, branch=branch, exist_ok=True)
        info = api.create_commit(repo_id, operations, revision=branch,
                                 commit_message=message or f"DGS-Net checkpoint {checkpoint.sha256[:12]}")
    except (KeyboardInterrupt, TrainError):
        raise
    except Exception as exc:  # noqa: BLE001 - huggingface_hub, network and OS errors: one line for the user
        raise _upload_error(exc, repo_id, endpoint) from None
    return PublishResult(repo_id=repo_id, revision=branch, commit=info.oid, url=str(info.commit_url),
                         files=names + [CARD_NAME])


# ----------------------------------------------------------------------------- command line
def add_publish_arguments(p) -> None:
    p.add_argument("checkpoint", help="checkpoint folder to publish (written by dgs-desktop-train)")
    p.add_argument("--repo", required=True, help="hub repository ORG/NAME (created if missing)")
    p.add_argument("--revision", help="branch to commit to (created from main if missing; default main)")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--eval", action="append", default=[], metavar="[NAME=]CSV",
                   help="an evaluate --csv table to put in the model card (repeatable)")
    p.add_argument("--license", default=DEFAULT_LICENSE, help=f"license id for the card (default {DEFAULT_LICENSE})")
    p.add_argument("--message", help="commit message")


def run_publish(args) -> int:
    result = publish(args.checkpoint, args.repo, revision=args.revision, private=args.private, eval_csvs=args.eval,
                     license_id=args.license, message=args.message)
    print(f"published {len(result.files)} files to {result.repo_id} ({result.revision}), commit {result.commit}")
    print(f"load it with: --checkpoint {result.spec}")
    return 0
