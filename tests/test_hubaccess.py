"""The shared hub rules (dgs_desktop/detector/hubaccess.py): the `hf:` / `hf-dataset:` grammar,
the offline check, the network errors, the failure wording, and the model card's `model-index`
written and read back through huggingface_hub's ModelCardData / EvalResult."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from dgs_desktop.detector.hubaccess import (
    CHECKPOINT_SCHEME,
    DATASET_SCHEME,
    RepoSpec,
    hub_error_message,
    is_offline,
    network_errors,
    not_cached_message,
    parse_repo_spec,
    repo_id_problem,
)
from dgs_desktop.errors import CheckpointError, InputError

ENDPOINT = "http://127.0.0.1:9"


# ----------------------------------------------------------------------------- grammar
def test_one_grammar_for_checkpoints_and_datasets():
    for scheme, repo_type in ((CHECKPOINT_SCHEME, "model"), (DATASET_SCHEME, "dataset")):
        ref = parse_repo_spec(f" {scheme}lab/bench@v2 ", scheme)
        assert ref == RepoSpec(scheme, "lab/bench", "v2") and ref.repo_type == repo_type
        assert str(ref) == f"{scheme}lab/bench@v2"
        assert str(parse_repo_spec(f"{scheme}lab/bench/", scheme)) == f"{scheme}lab/bench"
    assert parse_repo_spec("hf:org/name@refs/pr/3").revision == "refs/pr/3"


@pytest.mark.parametrize("bad", ["lab/bench", "hf-dataset:lab/bench", "hf:", "hf:bench", "hf:lab/bench@",
                                 "hf:a/b/c", "hf:lab/ben ch", "hf:org/-bad..name"])
def test_bad_specs_name_the_form_to_write(bad):
    with pytest.raises(CheckpointError) as caught:
        parse_repo_spec(bad)
    message = str(caught.value)
    assert repr(bad) in message and "hf:ORG/NAME" in message and "\n" not in message


def test_the_caller_chooses_the_error_type():
    with pytest.raises(InputError, match="is not a hub dataset; write it as hf-dataset:ORG/NAME"):
        parse_repo_spec("hf:lab/bench", DATASET_SCHEME, InputError)


def test_bare_repo_ids():
    assert repo_id_problem("lab/bench") is None
    assert repo_id_problem("bench") == "it must be ORG/NAME"
    assert repo_id_problem("lab/be nch")  # huggingface_hub's own validation says why


# ----------------------------------------------------------------------------- offline, network
def test_offline_follows_huggingface_hub(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert is_offline()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    assert not is_offline()


def test_network_errors_cover_the_http_client(monkeypatch):
    from huggingface_hub import constants, errors
    from huggingface_hub.utils import get_session

    caught = network_errors()
    assert issubclass(ConnectionRefusedError, caught) and issubclass(TimeoutError, caught)
    assert not issubclass(ValueError, caught)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # else the client refuses before connecting
    try:  # what huggingface_hub's own HTTP client raises for a closed port
        get_session().head(ENDPOINT, timeout=5)
    except Exception as exc:  # noqa: BLE001 - the client's own type is the point of the test
        assert not isinstance(exc, errors.OfflineModeIsEnabled)
        assert isinstance(exc, caught), type(exc).__mro__
    else:
        pytest.fail(f"something answered on {ENDPOINT}")


def _http_error(cls, status: int):
    """A huggingface_hub HTTP error as its client raises it (it reads the status, headers and request)."""
    response = SimpleNamespace(status_code=status, headers={}, request=None)
    return cls(f"{status} error", response=response)


def test_not_cached_offline_and_unreachable():
    ref = RepoSpec(CHECKPOINT_SCHEME, "lab/x")
    offline = not_cached_message(ref, offline=True, endpoint=ENDPOINT, filename="a.bin")
    assert offline.startswith("hf:lab/x (a.bin) is not in the local cache and offline mode is on")
    unreachable = not_cached_message(ref, offline=False, endpoint=ENDPOINT)
    assert f"cannot reach the Hugging Face hub at {ENDPOINT}" in unreachable
    assert "hf:lab/x is not in the local cache" in unreachable


def test_hub_errors_worded_once_for_models_and_datasets():
    from huggingface_hub import errors

    model, dataset = RepoSpec(CHECKPOINT_SCHEME, "lab/x", "v1"), RepoSpec(DATASET_SCHEME, "lab/x")

    def say(exc, ref=model, **kw):
        return hub_error_message(exc, ref, offline=False, endpoint=ENDPOINT, **kw)

    assert say(_http_error(errors.RepositoryNotFoundError, 404)).startswith(
        f"hf:lab/x@v1: repository not found on {ENDPOINT}")
    assert say(_http_error(errors.RepositoryNotFoundError, 404), dataset).startswith(
        f"hf-dataset:lab/x: dataset not found on {ENDPOINT}")
    assert "is a gated dataset" in say(_http_error(errors.GatedRepoError, 403), dataset)
    assert say(_http_error(errors.RevisionNotFoundError, 404)).startswith("hf:lab/x@v1: revision not found")
    assert say(_http_error(errors.HfHubHTTPError, 503), filename="a.bin") == (
        f"the hub at {ENDPOINT} answered HTTP 503 for hf:lab/x@v1 (a.bin); try again later")
    assert "is not in the local cache" in say(errors.LocalEntryNotFoundError("missing"))
    # what only one caller knows how to say is left to it
    assert say(_http_error(errors.RemoteEntryNotFoundError, 404)) is None
    assert say(ValueError("other")) is None


# ----------------------------------------------------------------------------- model-index
def test_model_index_round_trip_through_model_card_data(tiny_checkpoint, tmp_path):
    from huggingface_hub import ModelCard

    from dgs_desktop.detector.modelcard import CARD_KEY, card_metrics
    from trainer.publish import EvalTable, card_text

    clean = EvalTable(name="GenImage", rows=[{"subset": "a"}], mean={"acc": 0.9, "ap": 0.95},
                      paper_table={"acc": 0.925, "ap": 0.984})
    blurred = EvalTable(name="GenImage", rows=[{"subset": "a"}], mean={"acc": 0.7, "ap": None}, paper_table=None,
                        perturbation="Gaussian blur sigma=2")
    card = ModelCard(card_text(tiny_checkpoint, "lab/dgs-tiny", [clean, blurred]))
    got = {(r.dataset_name, r.dataset_config, r.metric_type, r.metric_name): r.metric_value
           for r in card.data.eval_results}
    assert card.data.model_name == "dgs-tiny"
    assert got == {("GenImage", None, "accuracy", "mAcc"): 92.5,
                   ("GenImage", None, "average_precision", "mAP"): 98.4,
                   ("GenImage (Gaussian blur sigma=2)", "Gaussian blur sigma=2", "accuracy", "mean Acc"): 70.0}
    # a card without our own block is read from its model-index alone, one evaluation per dataset
    card.data.pop(CARD_KEY)
    card.save(tmp_path / "README.md")
    first, second = card_metrics(tmp_path)
    assert (first.name, second.name) == ("GenImage", "GenImage (Gaussian blur sigma=2)")
    assert math.isclose(first.mean["acc"], 0.925) and math.isclose(first.mean["ap"], 0.984)
    assert math.isclose(second.mean["acc"], 0.7) and second.mean["ap"] is None


def test_a_checkpoint_is_named_alike_in_the_table_and_the_report():
    from dgs_desktop.detector.hubaccess import checkpoint_name, is_hub_checkpoint

    assert is_hub_checkpoint("hf:lab/model@v1") and is_hub_checkpoint("  hf:lab/model")
    assert not is_hub_checkpoint("/models/hf:odd") and not is_hub_checkpoint("models/lab")
    assert checkpoint_name("hf:lab/model@v1") == "hf:lab/model@v1"
    assert checkpoint_name("/models/dgs-ltw/") == "dgs-ltw" and checkpoint_name("") == ""
