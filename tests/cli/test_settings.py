"""One settings base (skmia._settings): shared fields, one check naming the setting, the
CLI's usage errors made from it."""

import re
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

from skmia._settings import AuditConfig, DPAuditConfig, RunConfig, Settings

ROOT = Path(__file__).resolve().parents[2]


def _run(**kw):
    return RunConfig(**{"dataset": "location", "method": "vanilla", **kw})


def _audit(**kw):
    return AuditConfig(**{"dataset": "location", "methods": ("vanilla",), **kw})


def _dp(**kw):
    return DPAuditConfig(**{"dataset": "location", "noise_multipliers": (1.0,), **kw})


def test_every_config_shares_the_base_fields():
    shared = {f.name for f in fields(Settings)}
    assert shared == {"dataset", "seed", "epochs", "out", "data_home", "device", "n_jobs"}
    for cls in (RunConfig, AuditConfig, DPAuditConfig):
        assert issubclass(cls, Settings) and shared <= {f.name for f in fields(cls)}
        assert not {"jobs", "quiet"} & {f.name for f in fields(cls)}
    assert {f.name for f in fields(RunConfig)} >= {"verbose", "threads"}
    assert "verbose" in {f.name for f in fields(AuditConfig)}


def test_defaults_pass_and_check_returns_the_config():
    for config in (_run(), _audit(), _dp()):
        assert config.check() is config
    # positional dataset and method(s), as before
    assert RunConfig("location", "vanilla") == _run()
    assert AuditConfig("location", ("vanilla",)) == _audit()


@pytest.mark.parametrize(("make", "kw", "field", "error"), [
    (_run, {"dataset": "mnist"}, "dataset", ValueError),
    (_run, {"seed": -1}, "seed", ValueError),
    (_run, {"seed": 2**32}, "seed", ValueError),
    (_audit, {"epochs": 0}, "epochs", ValueError),
    (_dp, {"epochs": 1.5}, "epochs", ValueError),
    (_run, {"out": 3}, "out", TypeError),
    (_audit, {"data_home": 3}, "data_home", TypeError),
    (_dp, {"device": 0}, "device", TypeError),
    (_run, {"n_jobs": 0}, "n_jobs", ValueError),
    (_audit, {"n_jobs": -2}, "n_jobs", ValueError),
    (_dp, {"n_jobs": True}, "n_jobs", ValueError),
    (_run, {"method": "magic"}, "method", ValueError),
    (_run, {"model": "resnet20"}, "model", ValueError),  # tabular data: the MLP
    (_run, {"shadow_method": "other"}, "shadow_method", ValueError),
    (_run, {"verbose": True}, "verbose", ValueError),
    (_run, {"threads": 0}, "threads", ValueError),
    (_run, {"attacks": ("lira",)}, "attacks", ValueError),
    (_run, {"attacks": ("bogus",)}, "attacks", ValueError),
    (_run, {"reference_models": 3}, "reference_models", ValueError),
    (_run, {"overrides": [("alpha", 1)]}, "overrides", TypeError),
    (_audit, {"methods": ()}, "methods", ValueError),
    (_audit, {"methods": ("vanilla", "vanilla")}, "methods", ValueError),
    (_audit, {"models": 2}, "models", ValueError),
    (_audit, {"models": 7}, "models", ValueError),
    (_audit, {"canaries": 0}, "canaries", ValueError),
    (_audit, {"canary_kind": "none"}, "canary_kind", ValueError),
    (_audit, {"poisons": -1}, "poisons", ValueError),
    (_audit, {"records": 0}, "records", ValueError),
    (_audit, {"test_size": 1.0}, "test_size", ValueError),
    (_audit, {"hidden": (0,)}, "hidden", ValueError),
    (_audit, {"dataset": "cifar10", "hidden": (8,)}, "hidden", ValueError),
    (_audit, {"overrides": {"alpha": 1.0}}, "alpha", ValueError),  # not vanilla's
    (_audit, {"verbose": "yes"}, "verbose", ValueError),
    (_dp, {"noise_multipliers": ()}, "noise_multipliers", ValueError),
    (_dp, {"target_epsilons": (-1.0,)}, "target_epsilons", ValueError),
    (_dp, {"dataset": "cifar10"}, "dataset", ValueError),
    (_dp, {"canaries": 1}, "canaries", ValueError),
    (_dp, {"runs": 0}, "runs", ValueError),
    (_dp, {"reference": 1}, "reference", ValueError),
    (_dp, {"batch_size": 0}, "batch_size", ValueError),
    (_dp, {"delta": 1.0}, "delta", ValueError),
    (_dp, {"confidence": 0.5}, "confidence", ValueError),
])
def test_check_names_the_wrong_setting(make, kw, field, error):
    with pytest.raises(error) as info:
        make(**kw).check()
    assert info.value.field == field
    assert re.match(rf"(give )?{field}\b", str(info.value)), str(info.value)


def test_the_removed_keywords_name_their_replacement():
    for cls, required in ((RunConfig, ("location", "vanilla")),
                          (AuditConfig, ("location", ("vanilla",))),
                          (DPAuditConfig, ("location",))):
        with pytest.raises(TypeError, match=f"{cls.__name__}.. got jobs=, .* use n_jobs"):
            cls(*required, jobs=2)
        with pytest.raises(TypeError, match=r"got quiet=, .* use verbose=0"):
            cls(*required, quiet=True)


def test_the_cli_names_options_where_the_library_names_settings():
    from skmia._settings import settings_error
    from skmia.cli import _usage_message

    error = settings_error("attacks", "attacks lira needs reference_models K")
    assert _usage_message(error) == "--attacks lira needs --reference-models K"
    error = settings_error("n_jobs", "n_jobs must be a positive integer, got 0")
    assert _usage_message(error) == "--jobs must be a positive integer, got 0"
    error = settings_error("noise_multipliers", "give noise_multipliers or target_epsilons")
    assert _usage_message(error) == "give --noise-multipliers or --target-epsilons"


def test_the_method_option_loop_is_written_once():
    source = (ROOT / "skmia" / "cli.py").read_text(encoding="utf-8")
    assert len(re.findall(r"METHOD_OPTIONS\.items\(\)", source)) == 1


@pytest.mark.parametrize(("argv", "message"), [
    (["audit-dp", "--dataset", "location", "--noise-multipliers", "1", "--runs", "0"],
     "--runs must be a positive integer, got 0"),
    (["audit", "--dataset", "location", "--methods", "vanilla", "--jobs", "0"],
     "--jobs must be a positive integer or -1 (all cores), got 0"),
    (["run", "--dataset", "location", "--method", "vanilla", "--mode", "attack",
      "--reference-models", "3"], "--reference-models must be an even number >= 2"),
])
def test_usage_errors_come_before_torch(argv, message):
    code = ("import sys\nfrom skmia.cli import main\n"
            f"try:\n    main({argv!r})\n"
            "except SystemExit as e:\n    print(e.code, 'torch' in sys.modules,"
            " 'skmia.experiment' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, cwd=ROOT)
    assert result.stdout.split() == ["2", "False", "False"], result.stderr
    assert message in result.stderr and result.stderr.startswith("usage: skmia ")


def test_the_folders_are_the_layouts_of_rundir(tmp_path):
    from skmia._rundir import audit_folder, dp_audit_folder, run_folder
    from skmia.experiment import run_directory
    from skmia.experiment._audit_dir import audit_directory
    from skmia.experiment._dp_audit import dp_audit_directory

    run = _run(out=tmp_path, seed=7)
    assert run.folder == run_directory(tmp_path, "location", "vanilla", 7) \
        == run_folder(tmp_path, "location", "vanilla", 7) \
        == tmp_path / "location" / "vanilla" / "seed7"
    assert run_folder(tmp_path, "cifar10", "vanilla", 7, "resnet20") \
        == tmp_path / "cifar10" / "resnet20" / "vanilla" / "seed7"
    audit = _audit(out=tmp_path, dataset="cifar10", model="vgg11_bn", seed=3)
    assert audit.folder == audit_directory(tmp_path, "cifar10", 3, "vgg11_bn") \
        == audit_folder(tmp_path, "cifar10", 3, "vgg11_bn") \
        == tmp_path / "cifar10" / "vgg11_bn" / "audit" / "seed3"
    assert dp_audit_directory(tmp_path, "location", 5) == dp_audit_folder(
        tmp_path, "location", 5) == tmp_path / "location" / "audit_dp" / "seed5"
