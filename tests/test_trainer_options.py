"""`train` and `evaluate` take their options from one dataclass machinery (trainer/config.py):
the options they share are single fields of `SourceOptions`, so they cannot drift apart."""

from __future__ import annotations

import argparse
from dataclasses import fields

import pytest

from dgs_desktop.cli.shell import build_parser
from trainer.cli import COMMANDS, DESCRIPTION, PROG
from trainer.config import EvaluateConfig, SourceOptions, TrainConfig, from_args


def _parser() -> argparse.ArgumentParser:
    return build_parser(PROG, DESCRIPTION, COMMANDS)


def _options(parser: argparse.ArgumentParser, command: str) -> dict[str, argparse.Action]:
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices[command]._actions}


def test_shared_options_are_one_field_each():
    shared = {f.name: f for f in fields(SourceOptions)}
    assert {"classes", "split", "image_column", "label_column", "subset_column", "category_column", "device",
            "progress"} <= set(shared)
    for config_class in (TrainConfig, EvaluateConfig):  # inherited, never redefined
        own = {f.name: f for f in fields(config_class)}
        assert all(own[name] is field for name, field in shared.items()), config_class
    train, evaluate = _options(_parser(), "train"), _options(_parser(), "evaluate")
    for name, field in shared.items():
        a, b = train[name], evaluate[name]
        assert (a.option_strings, a.default, a.help, a.type, a.choices) == \
               (b.option_strings, b.default, b.help, b.type, b.choices), name
        assert a.help.startswith(field.metadata["help"])
    assert evaluate["progress"].option_strings == ["--no-progress"] and evaluate["progress"].default is True
    # the same word meaning different things stays two options: a global batch vs a forward pass
    assert train["batch_size"].default == 32 and evaluate["batch_size"].default is None


def test_evaluate_options_parse_into_its_dataclass():
    parser = _parser()
    plain = parser.parse_args(["evaluate", "--checkpoint", "c", "--data", "d"])
    assert from_args(plain, EvaluateConfig) == EvaluateConfig(checkpoint="c", data="d")  # defaults written once
    config = from_args(parser.parse_args(["evaluate", "--checkpoint", "c", "--data", "d", "--no-progress",
                                          "--classes", "car, cat", "--split", "test", "--jpeg-quality", "90",
                                          "--decoding", "authors", "--workers", "2"]), EvaluateConfig)
    assert (config.progress, config.jpeg_quality, config.decoding, config.workers) == (False, 90, "authors", 2)
    trained = TrainConfig(data="d", out="o", classes="car, cat")
    assert config.data_options(config.split) == trained.data_options("test")
    assert config.data_options(config.split).classes == ("car", "cat")
    for bad in (["--jpeg-quality", "101"], ["--workers", "0"], ["--precision", "fp16"]):
        with pytest.raises(SystemExit):
            parser.parse_args(["evaluate", "--checkpoint", "c", "--data", "d", *bad])
