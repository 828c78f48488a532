"""Data sources (trainer/sources.py): folder trees, parquet shards, hub datasets (fake hub)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from parquetgen import image_bytes, write_dataset, write_shards

from dgs_desktop.scan.decode import DecodeError, decode_bytes, decode_image
from trainer.errors import TrainError
from trainer.sources import (
    DataOptions,
    evaluation_groups,
    open_source,
    parse_classes,
    parse_hub_dataset,
    select_split,
    shared_real_pool,
)

ROOT = Path(__file__).resolve().parents[1]


def _write(path: Path, seed: int, fake: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image_bytes(seed, fake))


@pytest.fixture()
def tree(tmp_path):
    root = tmp_path / "train"
    for k, category in enumerate(["car", "cat", "horse"]):
        for i in range(2):
            _write(root / "progan" / category / "0_real" / f"{i}.png", k * 10 + i, False)
            _write(root / "progan" / category / "1_fake" / f"{i}.png", k * 10 + i + 5, True)
    _write(root / "sdv1.4" / "0_real" / "a.png", 90, False)
    _write(root / "sdv1.4" / "1_fake" / "b.png", 91, True)
    # GenImage's native layout
    _write(root / "adm" / "val" / "nature" / "n.png", 92, False)
    _write(root / "adm" / "val" / "ai" / "x.png", 93, True)
    (root / "progan" / "car" / "0_real" / "notes.txt").write_text("not an image")
    return root


def test_tree_subsets_categories_and_genimage_leaves(tree):
    data = open_source(tree)
    by_rel = {s.rel: s for s in data.samples}
    assert len(data.samples) == 16
    assert by_rel["progan/cat/1_fake/1.png"].subset == "progan"
    assert by_rel["progan/cat/1_fake/1.png"].category == "progan/cat"
    assert by_rel["progan/cat/1_fake/1.png"].label == 1
    assert by_rel["sdv1.4/0_real/a.png"].category == "sdv1.4"
    assert by_rel["adm/val/nature/n.png"].label == 0 and by_rel["adm/val/ai/x.png"].label == 1
    assert by_rel["adm/val/ai/x.png"].subset == "adm" and by_rel["adm/val/ai/x.png"].category == "adm/val"
    assert data.counts() == {"adm": {"real": 1, "fake": 1}, "progan": {"real": 6, "fake": 6},
                             "sdv1.4": {"real": 1, "fake": 1}}
    assert data.provenance["kind"] == "folder"



def test_images_the_trainer_cannot_decode_are_listed_and_the_one_rule_still_holds(tree):
    """`drop_unreadable` keeps the set's root and provenance, lists each dropped image with its
    reason after the rows the source skipped, and refuses what is left with the source's own
    rule (`check_usable`): training needs real and fake images."""
    from trainer.data import drop_unreadable

    data = open_source(tree)
    first_fake = next(i for i, s in enumerate(data.samples) if s.label == 1)
    kept = drop_unreadable(data, {first_fake: "truncated"})
    assert len(kept.samples) == len(data.samples) - 1 and data.samples[first_fake] not in kept.samples
    assert kept.skipped == [(data.samples[first_fake].name, "truncated")]
    assert kept.provenance == data.provenance and kept.root == data.root and len(data.skipped) == 0
    assert kept.labels.tolist() == [s.label for s in kept.samples]
    fakes = {i: "truncated" for i, s in enumerate(data.samples) if s.label == 1}
    with pytest.raises(TrainError, match="has only real images; training needs both classes"):
        drop_unreadable(data, fakes)
    with pytest.raises(TrainError, match="no images in"):
        drop_unreadable(data, {i: "truncated" for i in range(len(data.samples))})

def test_tree_root_with_leaves_is_one_subset(tree):
    data = open_source(tree / "sdv1.4")
    assert {s.subset for s in data.samples} == {"sdv1.4"}


def test_classes_keep_only_those_category_folders(tree):
    data = open_source(tree, DataOptions(classes=parse_classes("car, horse,sdv1.4")))
    assert {s.category for s in data.samples} == {"progan/car", "progan/horse", "sdv1.4"}
    assert len(data.samples) == 10
    assert len(open_source(tree, DataOptions(classes=("progan/car",))).samples) == 4  # the full path works too
    with pytest.raises(TrainError, match="chair.*there are: adm/val, progan/car, progan/cat"):
        open_source(tree, DataOptions(classes=("car", "chair")))


def test_file_sample_decodes_like_the_scan(tree):
    sample = open_source(tree).samples[0]
    assert sample.decode().sha256 == decode_image(sample.path).sha256
    assert sample.read_bytes() == sample.path.read_bytes()


@pytest.fixture(scope="module")
def parquet_dataset(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ds") / "bench", {"train": 4, "test": 3}, broken_split="test")


def test_parquet_columns_labels_and_subsets(parquet_dataset):
    data = open_source(parquet_dataset, DataOptions(split="test"))
    # 3 fakes each for ProGAN and SD14, 6 reals, + a broken image, a row without bytes; no-label row skipped
    assert len(data.samples) == 14
    assert data.counts() == {"ProGAN": {"real": 0, "fake": 4}, "Real": {"real": 7, "fake": 0},
                             "SD14": {"real": 0, "fake": 3}}
    assert len(data.skipped) == 1 and "neither real nor fake" in data.skipped[0][1]
    assert data.provenance["columns"] == {"image": "image", "label": "label", "subset": "generator",
                                          "category": None}
    assert data.provenance["split"] == "test"
    assert all(f.startswith("data/test-") for f in data.provenance["files"])
    assert {s.rel.split("#")[0] for s in data.samples} == {"data/test-00000-of-00002.parquet",
                                                          "data/test-00001-of-00002.parquet"}


def test_dataset_rows_go_through_the_scan_decoder(parquet_dataset, tmp_path):
    data = open_source(parquet_dataset, DataOptions(split="test"))
    good = bad = 0
    for sample in data.samples:
        try:
            raw = sample.read_bytes()
        except DecodeError as exc:
            assert "no embedded image bytes" in str(exc)
            bad += 1
            continue
        try:
            decoded = sample.decode()
        except DecodeError as exc:
            assert exc.sha256 == hashlib.sha256(raw).hexdigest()  # same DecodeError as a file would give
            bad += 1
            continue
        as_file = tmp_path / f"{good}.{decoded.format.lower()}"
        as_file.write_bytes(raw)
        from_file = decode_image(as_file)
        assert decoded.sha256 == from_file.sha256 == hashlib.sha256(raw).hexdigest()
        assert decoded.image.tobytes() == from_file.image.tobytes()
        assert decoded.sha256 == decode_bytes(raw).sha256
        good += 1
    assert (good, bad) == (12, 2)


def test_split_is_required_when_there_are_several(parquet_dataset):
    with pytest.raises(TrainError, match="splits test, train; choose one with --split"):
        open_source(parquet_dataset)
    with pytest.raises(TrainError, match="no parquet files for split 'validation'"):
        open_source(parquet_dataset, DataOptions(split="validation"))


def test_split_patterns_without_a_card():
    names = ["data/train-00000-of-00002.parquet", "data/test-00000-of-00001.parquet", "README.md"]
    assert select_split(names, "test", {}) == (["data/test-00000-of-00001.parquet"], "test")
    assert select_split(["a/train/0000.parquet", "a/test/0000.parquet"], "train", {})[0] == ["a/train/0000.parquet"]
    assert select_split(["x.parquet"], None, {}) == (["x.parquet"], None)


def test_shared_real_pool_groups(parquet_dataset):
    samples = open_source(parquet_dataset, DataOptions(split="train")).samples
    assert shared_real_pool(samples) == {"Real"}
    groups, note = evaluation_groups(samples)
    reals = {i for i, s in enumerate(samples) if s.label == 0}
    assert [g.name for g in groups] == ["ProGAN", "SD14"]
    for group in groups:
        members = [samples[i] for i in group.indices]
        assert reals <= set(group.indices)
        assert {s.subset for s in members if s.label == 1} == {group.name}
    assert "all 8 real images (Real) as negatives" in note


def test_tree_groups_are_plain_subsets(tree):
    samples = open_source(tree).samples
    groups, note = evaluation_groups(samples)
    assert note is None and [g.name for g in groups] == ["adm", "progan", "sdv1.4"]
    assert sum(len(g.indices) for g in groups) == len(samples)


def test_classes_on_a_dataset_keep_all_reals(parquet_dataset):
    data = open_source(parquet_dataset, DataOptions(split="train", classes=("SD14",)))
    assert data.counts() == {"Real": {"real": 8, "fake": 0}, "SD14": {"real": 0, "fake": 4}}


def test_label_column_override_and_missing_classlabel(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"img": [image_bytes(1, False), image_bytes(2, True)], "is_fake": ["real", "fake"],
                      "source": ["camera", "flux"]})
    pq.write_table(table, tmp_path / "plain.parquet")
    with pytest.raises(TrainError, match="--label-column"):
        open_source(tmp_path / "plain.parquet")
    data = open_source(tmp_path / "plain.parquet", DataOptions(label_column="is_fake", subset_column="source"))
    assert [(s.label, s.subset) for s in data.samples] == [(0, "camera"), (1, "flux")]
    assert data.samples[1].decode().sha256 == hashlib.sha256(image_bytes(2, True)).hexdigest()
    with pytest.raises(TrainError, match="--subset-column nope: .* has no such column"):
        open_source(tmp_path / "plain.parquet", DataOptions(label_column="is_fake", subset_column="nope"))


def test_training_needs_both_classes(tmp_path):
    from parquetgen import rows

    write_shards(tmp_path, "train", [r for r in rows(2, 0) if r["label"] == 1], shards=1)
    with pytest.raises(TrainError, match="only fake images"):
        open_source(tmp_path)
    assert len(open_source(tmp_path, require_both=False).samples) == 4


def test_hub_dataset_names():
    assert parse_hub_dataset("hf-dataset:lab/bench") == ("lab/bench", None)
    assert parse_hub_dataset("hf-dataset:lab/bench@v2") == ("lab/bench", "v2")
    for bad in ("hf-dataset:bench", "hf-dataset:lab/bench@", "hf-dataset:a/b/c"):
        with pytest.raises(TrainError):
            parse_hub_dataset(bad)


# ----------------------------------------------------------------------------- through the fake hub
RUNNER = r"""
import json, sys
from trainer.errors import TrainError
from trainer.sources import DataOptions, open_source
for spec, split in json.loads(sys.argv[1]):
    try:
        data = open_source(spec, DataOptions(split=split), require_both=False)
        out = {"ok": True, "description": data.description, "provenance": data.provenance,
               "samples": [[s.rel, s.label, s.subset] for s in data.samples],
               "first_sha": data.samples[0].decode().sha256}
    except TrainError as exc:
        out = {"ok": False, "error": str(exc)}
    print("RESULT " + json.dumps(out), flush=True)
"""


def _run(steps, endpoint: str, hf_home: Path, offline: bool) -> list[dict]:
    from fakehub import run_steps

    return run_steps(RUNNER, steps, endpoint=endpoint, hf_home=hf_home, offline=offline, root=ROOT)[0]


def test_hub_dataset_split_download_resume_and_offline(parquet_dataset, tmp_path):
    from fakehub import FakeHub

    local = open_source(parquet_dataset, DataOptions(split="test"), require_both=False)
    home = tmp_path / "hf_home"
    with FakeHub(lifetime=170) as hub:
        commit = hub.add_repo("lab/bench", parquet_dataset, repo_type="dataset")
        hub.set_fault("datasets/lab/bench", "data/test-00001-of-00002.parquet", "drop", times=1)
        first, second = _run([["hf-dataset:lab/bench", "test"], ["hf-dataset:lab/bench", "test"]],
                             hub.endpoint, home, offline=False)
        missing = _run([["hf-dataset:lab/nothing", "test"], ["hf-dataset:lab/bench@nobranch", "test"],
                        ["hf-dataset:lab/bench", None]], hub.endpoint, home, offline=False)
        downloads = [path for method, path, _ in hub.requests("GET", "/resolve/")]
        dropped = hub.requests("GET", "test-00001")
    offline = _run([["hf-dataset:lab/bench", "test"], ["hf-dataset:lab/bench", "train"]],
                   "http://127.0.0.1:9", home, offline=True)
    # the hub unreachable without offline mode: the cache answers, one clear line otherwise
    unreachable = _run([["hf-dataset:lab/bench", "test"], ["hf-dataset:lab/other", "test"]],
                       "http://127.0.0.1:9", home, offline=False)

    # huggingface_hub retries a dropped connection itself: the first run already succeeds
    assert first["ok"], first
    assert len(dropped) == 2
    assert first["samples"] == second["samples"]
    assert second["ok"], second
    assert second["provenance"]["commit"] == commit and second["provenance"]["split"] == "test"
    assert second["samples"] == [[s.rel, s.label, s.subset] for s in local.samples]
    assert second["first_sha"] == first["first_sha"] == local.samples[0].decode().sha256
    # only the card and the test shards were fetched, never the train split
    assert downloads and not any("train-" in p for p in downloads)
    assert "dataset not found" in missing[0]["error"]
    assert "revision not found" in missing[1]["error"]
    assert "choose one with --split" in missing[2]["error"]
    # offline: the cached split works, the never-downloaded one is a clear error
    assert offline[0]["ok"], offline[0]
    assert offline[0]["samples"] == second["samples"]
    assert not offline[1]["ok"] and "not in the local cache" in offline[1]["error"]
    assert unreachable[0]["ok"] and unreachable[0]["samples"] == second["samples"], unreachable[0]
    assert not unreachable[1]["ok"] and "cannot be reached" in unreachable[1]["error"], unreachable[1]
    # a split with a shard missing from the cache is refused offline, not silently used in part
    snapshot = next((home / "hub" / "datasets--lab--bench" / "snapshots").iterdir())
    (snapshot / "data" / "test-00001-of-00002.parquet").unlink()
    partial = _run([["hf-dataset:lab/bench", "test"]], "http://127.0.0.1:9", home, offline=True)[0]
    assert not partial["ok"] and "not in the local cache" in partial["error"], partial


def test_labels_are_mapped_by_class_name_not_by_index(tmp_path):
    from parquetgen import hf_metadata, rows

    metadata = hf_metadata()
    metadata["info"]["features"]["label"]["names"] = ["Fake", "Real"]  # reversed order, other case
    table_rows = rows(1, 0)
    for row in table_rows:
        row["label"] = 1 - row["label"]
    write_shards(tmp_path, "test", table_rows, shards=1, metadata=metadata)
    data = open_source(tmp_path)
    assert data.counts() == {"ProGAN": {"real": 0, "fake": 1}, "Real": {"real": 2, "fake": 0},
                             "SD14": {"real": 0, "fake": 1}}
