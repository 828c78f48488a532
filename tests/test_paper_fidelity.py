"""Issue 21: the authors' arithmetic on request, and every scoring choice recorded."""

import csv
import io

import numpy as np
import pytest
import torch
from PIL import Image

from dgs_desktop.scan.decode import ANALYST, AUTHORS, decode_bytes
from tests.imagegen import encode, jpeg_with_orientation, mode_images, noise_rgb, photo_like
from tests.test_trainer_support import make_tree


def authors_rgb(data: bytes) -> np.ndarray:
    """What the authors' code feeds the model: Image.open(path).convert('RGB')."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.mark.parametrize("name", sorted(mode_images()))
def test_authors_decoding_is_open_convert_for_every_mode(name):
    image, fmt = mode_images()[name]
    data = encode(image, fmt.split("-")[0])
    decoded = decode_bytes(data, decoding=AUTHORS)
    assert np.array_equal(np.asarray(decoded.image), authors_rgb(data))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_only_in_the_analyst_decoding(orientation):
    data = jpeg_with_orientation(noise_rgb(96, 64, seed=3), orientation)
    authors, analyst = decode_bytes(data, decoding=AUTHORS), decode_bytes(data, decoding=ANALYST)
    assert np.array_equal(np.asarray(authors.image), authors_rgb(data))
    assert authors.image.size == (96, 64)
    if orientation == 1:
        assert np.array_equal(np.asarray(analyst.image), np.asarray(authors.image)) and not authors.notes
    else:
        assert f"EXIF orientation {orientation} not applied (authors' decoding)" in authors.notes
        assert f"EXIF orientation {orientation} applied" in analyst.notes
        assert analyst.image.size == ((64, 96) if orientation >= 5 else (96, 64))
        assert not np.array_equal(np.asarray(analyst.image), np.asarray(authors.image))


def test_sixteen_bit_saturates_only_in_the_authors_decoding():
    gray = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    data = encode(Image.fromarray(gray), "PNG")
    authors, analyst = decode_bytes(data, decoding=AUTHORS), decode_bytes(data, decoding=ANALYST)
    assert np.asarray(authors.image)[..., 0].max() == 255 and (np.asarray(authors.image) == 255).mean() > 0.9
    assert any("above 255 saturate" in note for note in authors.notes)
    assert np.array_equal(np.asarray(analyst.image)[..., 0], np.round(gray * (255 / 65535)).astype(np.uint8))
    with pytest.raises(ValueError, match="unknown decoding"):
        decode_bytes(data, decoding="paper")


def test_scanner_scores_differ_only_where_the_decodings_differ(tiny_checkpoint, tmp_path):
    from dgs_desktop.detector.checkpoint import load_detector
    from dgs_desktop.scan.engine import Scanner

    image = photo_like(np.random.default_rng(5), 320, 256)
    files = {k: tmp_path / f"o{k}.jpg" for k in (1, 6)}
    for k, path in files.items():
        path.write_bytes(jpeg_with_orientation(image, k))
    detector = load_detector(tiny_checkpoint, torch.device("cpu"))
    scores = {}
    for decoding in (ANALYST, AUTHORS):
        scanner = Scanner(detector, torch.device("cpu"), workers=1, decoding=decoding)
        assert scanner.jpeg_decoder == "pillow" and scanner.decoding == decoding
        scores[decoding] = {p.name: r.fake_probability for p, r in zip(files.values(), scanner.scan(files.values()))}
    assert scores[ANALYST]["o1.jpg"] == scores[AUTHORS]["o1.jpg"]
    assert scores[ANALYST]["o6.jpg"] != scores[AUTHORS]["o6.jpg"]
    assert scores[AUTHORS]["o6.jpg"] == scores[AUTHORS]["o1.jpg"]  # same pixels, orientation ignored
    with pytest.raises(ValueError, match="unknown decoding"):
        Scanner(detector, torch.device("cpu"), decoding="exif")


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0])
def test_scipy_blur_is_the_authors_and_pillow_is_close(sigma):
    from scipy.ndimage import gaussian_filter

    from trainer.evaluate import gaussian_blur

    image = photo_like(np.random.default_rng(1), 160, 128)
    ours = np.asarray(gaussian_blur(image, sigma, "scipy"))
    expected = np.array(image)
    for channel in range(3):
        gaussian_filter(expected[:, :, channel], output=expected[:, :, channel], sigma=sigma)
    assert np.array_equal(ours, expected)
    gap = np.abs(np.asarray(gaussian_blur(image, sigma, "pillow"), dtype=np.int16) - ours.astype(np.int16))
    assert 0 < gap.mean() < 2.0  # measured by bench/paper_fidelity.py
    with pytest.raises(ValueError, match="unknown blur backend"):
        gaussian_blur(image, sigma, "opencv")


@pytest.mark.usefixtures("tiny_training_env")
def test_evaluate_records_how_it_scored(tiny_checkpoint, tmp_path, capsys):
    from trainer.cli import main
    from trainer.facts import FACT_COLUMNS, library_versions
    from trainer.publish import read_eval_csv

    root = tmp_path / "test"
    make_tree(root / "progan", subsets=(".",), per_class=3, size=64, seed=4)
    base = ["evaluate", "--checkpoint", str(tiny_checkpoint.directory), "--data", str(root), "--no-progress",
            "--workers", "1", "--device", "cpu"]
    tables = {}
    for name, extra in (("plain", []), ("paper", ["--decoding", "authors", "--blur-sigma", "1",
                                                  "--blur-backend", "scipy", "--precision", "fp32"])):
        tables[name] = tmp_path / f"{name}.csv"
        assert main(base + extra + ["--csv", str(tables[name])]) == 0
        printed = capsys.readouterr().out
        rows = list(csv.DictReader(tables[name].open()))
        assert all(column in rows[0] for column in FACT_COLUMNS)
        assert len({tuple(r[c] for c in FACT_COLUMNS) for r in rows}) == 1
        assert rows[0]["precision"] == "fp32" and rows[0]["device"].startswith("cpu")
        assert rows[0]["jpeg_decoder"] == "pillow" and rows[0]["torch"] == library_versions()["torch"]
        assert f"torch {library_versions()['torch']}" in printed
    plain, paper = (list(csv.DictReader(tables[k].open()))[0] for k in ("plain", "paper"))
    assert (plain["decoding"], plain["blur_backend"]) == ("analyst", "")
    assert (paper["decoding"], paper["blur_backend"]) == ("authors", "scipy")
    table = read_eval_csv(str(tables["paper"]))
    assert table.scoring["decoding"] == "authors" and table.perturbation == "Gaussian blur sigma=1.0 (scipy)"


def test_model_card_states_the_scoring(tiny_checkpoint, tmp_path):
    from dgs_desktop.detector.modelcard import card_metrics, format_card_metrics
    from trainer.errors import TrainError
    from trainer.facts import FACT_COLUMNS
    from trainer.publish import card_text, read_eval_csv

    facts = {c: "" for c in FACT_COLUMNS} | {"precision": "fp32", "device": "cuda:0 (H200)", "jpeg_decoder": "pillow",
                                             "decoding": "authors", "torch": "2.4.1", "pillow": "11.0.0"}
    header = "subset,n_real,n_fake,acc,r_acc,f_acc,ap," + ",".join(FACT_COLUMNS)
    line = ",".join(facts[c] for c in FACT_COLUMNS)
    body = [f"{s},4,4,0.75,0.5,1.0,0.9,{line}" for s in ("ProGAN", "mean", "paper_table")]
    path = tmp_path / "genimage.csv"
    path.write_text("\n".join([header, *body]) + "\n")
    table = read_eval_csv(str(path))
    assert table.scoring == {k: v for k, v in facts.items() if v}
    text = card_text(tiny_checkpoint, "lab/dgs", [table])
    assert "Scored in fp32 on cuda:0 (H200), JPEG decoder pillow, authors decoding; torch 2.4.1, pillow 11.0.0." in text
    (tmp_path / "README.md").write_text(text)
    [evaluation] = card_metrics(tmp_path)
    assert evaluation.scoring == table.scoring
    assert "scored in fp32 on cuda:0 (H200)" in format_card_metrics([evaluation])

    old = tmp_path / "old.csv"  # written before the facts were recorded: still publishable
    old.write_text("subset,n_real,n_fake,acc,r_acc,f_acc,ap\nProGAN,4,4,0.75,0.5,1.0,0.9\n")
    assert read_eval_csv(str(old)).scoring == {} and "Scored in" not in card_text(tiny_checkpoint, "lab/dgs",
                                                                                  [read_eval_csv(str(old))])
    mixed = tmp_path / "mixed.csv"
    mixed.write_text("\n".join([header, body[0], body[1].replace("fp32", "bf16")]) + "\n")
    with pytest.raises(TrainError, match="line 3: the scoring facts differ"):
        read_eval_csv(str(mixed))
