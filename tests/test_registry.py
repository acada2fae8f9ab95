"""skmia._registry: the one place datasets and methods are written, and what reads it."""

import argparse
import ast
from pathlib import Path

import pytest

import skmia
from skmia import _registry
from skmia.datasets import DATASETS, load_dataset
from skmia.defenses import METHODS, paper_defaults
from skmia.experiment import (
    IMAGE_DATASETS,
    IMAGE_MODELS,
    MODES,
    TABULAR_DATASETS,
    method_classes,
    run_defaults,
)

ROOT = Path(__file__).resolve().parents[1]



def _subcommand(name):
    """``dest -> action`` of a subcommand of the ``skmia`` parser."""
    from skmia.cli import _build_parser

    parser = _build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    command = sub.choices[name]
    return command, {action.dest: action for action in command._actions}


def test_registry_imports_nothing_from_skmia():
    tree = ast.parse((ROOT / "skmia" / "_registry.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            assert node.level == 0 and not (node.module or "").startswith("skmia"), node.module
        elif isinstance(node, ast.Import):
            assert not any(alias.name.startswith("skmia") for alias in node.names)


def test_records_are_consistent():
    for name, record in _registry.DATASETS.items():
        assert record.name == name
        assert record.kind in ("tabular", "image") and record.protocol in _registry.PROTOCOLS
        paper = _registry.DATASETS[record.paper_dataset]
        assert paper.paper_dataset == paper.name  # settings are borrowed from the paper's
        assert set(record.method_values) <= set(_registry.METHODS)
        assert (record.kind == "image") == bool(record.models)
        assert set(record.models) <= set(_registry.IMAGE_MODELS)
        assert record.synthetic == (record.archive is None)  # real data has files
    for name, option in _registry.METHOD_OPTIONS.items():
        assert option.name == name and set(option.methods) <= set(_registry.METHODS)
    assert _registry.METHODS["relaxloss"].options == ("alpha", "upper")
    assert _registry.METHODS["vanilla"].options == ()


def test_public_views_keep_their_values():
    assert DATASETS == tuple(_registry.DATASETS)
    assert TABULAR_DATASETS == ("texas", "purchase", "location", "purchase-like", "texas-like")
    assert IMAGE_DATASETS == ("cifar10", "cifar100")
    assert IMAGE_MODELS == ("resnet20", "vgg11_bn")
    assert MODES == ("defense", "shadow", "attack", "defense_attack")
    assert METHODS == tuple(_registry.METHODS) == (
        "vanilla", "relaxloss", "advreg", "dpsgd", "confidence_penalty", "distillation",
        "dropout", "early_stopping", "label_smoothing", "hamp", "selena", "memguard",
        "dpsgd_hu",
    )
    assert skmia.model_selection.PROTOCOLS == ("relaxloss", "cifar")
    assert skmia.experiment._config.SYNTHETIC_DATA_SEED == _registry.SYNTHETIC_DATA_SEED == 0


@pytest.mark.parametrize("name", list(_registry.DATASETS))
def test_every_dataset_reaches_its_loader(name, tmp_path):
    record = _registry.DATASETS[name]
    if record.synthetic:
        X, y = load_dataset(name, n_samples=200, random_state=0, return_X_y=True)
        assert len(X) == len(y) == 200
        return
    # an empty data home: the loader asks for the registry's archive by name
    with pytest.raises(FileNotFoundError, match=record.archive.filename):
        load_dataset(name, data_home=tmp_path, download_if_missing=False)


def test_dataset_specs_hold_the_registry_files():
    from skmia.datasets import _cifar, _fetch, _load, _tabular

    assert _fetch.RemoteFile is _registry.RemoteFile
    specs = {"texas": _tabular.TEXAS100, "purchase": _tabular.PURCHASE100,
             "location": _tabular.LOCATION30, "cifar10": _cifar.CIFAR10,
             "cifar100": _cifar.CIFAR100}
    for name, spec in specs.items():
        record = _registry.DATASETS[name]
        assert spec.archive is record.archive and spec.cache == record.cache
        assert getattr(spec, "permutation", None) is record.permutation
    assert _registry.DATASETS["location"].archive.sha256.startswith("927203f8")
    assert _registry.DATASETS["texas"].permutation.sha256.startswith("4931bf6e")
    assert _registry.DATASETS["cifar10"].archive.md5 == "c58f30108f718f92721af3b95e74349a"
    for name, record in _registry.DATASETS.items():
        assert _load._LOADERS[name].__name__ == record.loader


def test_cli_choices_are_the_registry():
    for command in ("run", "compare", "split"):
        _, actions = _subcommand(command)
        assert tuple(actions["dataset"].choices) == tuple(_registry.DATASETS), command
    _, actions = _subcommand("run")
    assert tuple(actions["method"].choices) == tuple(_registry.METHODS)
    assert tuple(actions["mode"].choices) == _registry.MODES
    assert tuple(actions["model"].choices) == _registry.IMAGE_MODELS
    _, split = _subcommand("split")
    assert tuple(split["protocol"].choices) == _registry.PROTOCOLS


def test_cli_method_options_are_the_registry():
    command, actions = _subcommand("run")
    group = next(g for g in command._action_groups if g.title.startswith("method options"))
    assert [a.dest for a in group._group_actions] == list(_registry.METHOD_OPTIONS)
    for name, option in _registry.METHOD_OPTIONS.items():
        assert actions[name].type is option.type and actions[name].help == option.help


@pytest.mark.parametrize("name", list(_registry.METHOD_OPTIONS))
def test_cli_method_options_apply_where_the_registry_says(name, capsys):
    from skmia.cli import _build_parser, _run_config

    option = _registry.METHOD_OPTIONS[name]
    flag = f"--{name.replace('_', '-')}"
    parser = _build_parser()
    # SELENA's counts are ints; its n_models must exceed its default n_excluded (10)
    value = {"n_models": "12"}.get(name, "3" if option.type is int else "0.5")
    base = ["run", "--dataset", "location", "--mode", "defense", flag, value]
    args = parser.parse_args([*base, "--method", option.methods[0]])
    assert _run_config(parser, args).overrides == {name: option.type(value)}
    other = next(m for m in _registry.METHODS if m not in option.methods)
    args = parser.parse_args([*base, "--method", other])
    with pytest.raises(SystemExit):
        _run_config(parser, args)
    assert f"applies to {', '.join(option.methods)}" in capsys.readouterr().err


def test_method_classes_are_the_registry():
    classes = method_classes()
    assert tuple(classes) == tuple(_registry.METHODS)
    for name, record in _registry.METHODS.items():
        assert classes[name] is getattr(skmia.defenses, record.classifier)


def test_benchmarks_read_the_registry(tmp_path, benchmark_script):
    bench = benchmark_script("privacy_utility")
    assert bench.DATASETS == TABULAR_DATASETS
    assert bench.SYNTHETIC == ("purchase-like", "texas-like")
    assert bench.missing_data("purchase-like", tmp_path) is None
    reason = bench.missing_data("texas", tmp_path)
    assert "dataset_texas.tgz" in reason and "texas100.npz" in reason
    (tmp_path / "texas100.npz").touch()
    assert "random_r_texas100.npy" in bench.missing_data("texas", tmp_path)
    (tmp_path / "random_r_texas100.npy").touch()
    assert bench.missing_data("texas", tmp_path) is None
    gap = benchmark_script("synthetic_gap")
    assert gap.GENERATORS == {"purchase-like": skmia.datasets.make_purchase_like,
                              "texas-like": skmia.datasets.make_texas_like}


def test_paper_values_written_by_hand():
    assert paper_defaults("relaxloss", "cifar100", "vgg11_bn") == {
        "max_epochs": 300, "milestones": (150, 225), "lr": 0.1, "gamma": 0.1,
        "batch_size": 128, "optimizer__momentum": 0.9, "optimizer__weight_decay": 1e-4,
        "alpha": 0.5, "upper": 1.0,
    }
    assert paper_defaults("advreg", "texas") == {
        "max_epochs": 120, "milestones": (50, 100), "lr": 0.1, "gamma": 0.1,
        "batch_size": 128, "optimizer__momentum": 0.9, "optimizer__weight_decay": 1e-4,
        "alpha": 1.0, "inference_lr": 1e-3, "warmup_epochs": 1, "warmup_passes": 5,
        "inference_batches": 50, "classifier_batches": 2,
    }
    image = paper_defaults("advreg", "cifar10", "resnet20")
    assert (image["warmup_epochs"], image["inference_batches"]) == (3, None)
    assert paper_defaults("vanilla", "purchase") == {
        "max_epochs": 120, "milestones": (50, 100), "lr": 0.1, "gamma": 0.1,
        "batch_size": 128, "optimizer__momentum": 0.9, "optimizer__weight_decay": 1e-4,
    }


def test_run_defaults_borrow_the_paper_settings():
    location = run_defaults("relaxloss", "location")
    assert (location["alpha"], location["upper"]) == (1.0, 0.6)
    assert location["max_epochs"] == 120 and location["milestones"] == (50, 100)
    assert run_defaults("dpsgd", "location") == paper_defaults("dpsgd", "purchase")
    assert run_defaults("relaxloss", "texas-like") == paper_defaults("relaxloss", "texas")
    assert run_defaults("early_stopping", "cifar10", "vgg11_bn") == paper_defaults(
        "early_stopping", "cifar10", "vgg11_bn")
    with pytest.raises(ValueError, match="no paper settings for dataset 'mnist'"):
        run_defaults("vanilla", "mnist")
    with pytest.raises(ValueError, match="the paper trained on texas, purchase, cifar10, "
                                         "cifar100"):
        paper_defaults("vanilla", "location")
