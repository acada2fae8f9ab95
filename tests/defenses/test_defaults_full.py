"""Every defense with its full class defaults trains a useful model (issue 30).

Each classifier of :mod:`skmia.defenses` is fitted with its class defaults as they are
(the paper's MLP, every epoch and decay of its schedule; nothing from the per-dataset
presets) on the first ``MEMBERS`` target members of Location30's
``membership_split(random_state=1000)``, and tested on as many of its non-members,
through ``benchmarks/defense_defaults.py``'s ``fit_one`` (its ``full`` recipe). The
issue's promise: within 10 points of vanilla's test accuracy, or the class documents
why it loses more (and warns where it can tell at fit time). Slow: about 25 networks
of SELENA and one of each other defense, two at a time, the longest first; 165 s on the
2-core development machine at load 5-7 (2026-12-07), several times that under heavier
load.
"""

import inspect

import pytest

from skmia import defenses

pytestmark = pytest.mark.slow

MEMBERS = 200
TOLERANCE = 0.10
# the defaults that lose more than 10 points, each with what its docstring says of it
DOCUMENTED = {
    "relaxloss": "points below an\n    undefended network",
    "label_smoothing": "points below an\n    undefended network",
    "dpsgd": "points below an undefended network",
    "selena": "it ends 13 points below vanilla",
    # 11.5 points on this split at seed 0 (0.240 against 0.355), 8 over seeds 0-4
    "advreg": "points below an undefended network on average over seeds",
}
# the longest fits first (SELENA trains 25 sub-models and a distilled network): the two
# workers then share the short fits while SELENA runs, instead of SELENA starting last
LONGEST_FIRST = ("selena", "advreg")


@pytest.fixture(scope="module")
def results(benchmark_script, location_data_home):
    bench = benchmark_script("defense_defaults")
    methods = [*LONGEST_FIRST,
               *(m for m in bench.methods_of_registry() if m not in LONGEST_FIRST)]
    rows = bench.measure(["location"], ["full"], methods, members=MEMBERS, jobs=2)
    return {row["method"]: row for row in rows}


def test_every_defense_is_measured(results):
    from skmia.experiment import method_classes

    classes = {cls for name, cls in vars(defenses).items()
               if inspect.isclass(cls) and issubclass(cls, defenses.MIADefenseClassifier)
               and cls is not defenses.MIADefenseClassifier}
    measured = {method_classes()[m] for m in results}
    assert classes == measured, classes ^ measured


def test_the_defaults_train_a_useful_network(results):
    chance = 1 / 30
    for method, row in results.items():
        assert row["test"] > 3 * chance, (method, row)


@pytest.mark.parametrize("method", [
    "relaxloss", "advreg", "dpsgd", "confidence_penalty",
    "distillation", "dropout", "early_stopping", "label_smoothing", "hamp", "selena",
    "memguard"])
def test_within_ten_points_of_vanilla_or_documented(results, method):
    from skmia.experiment import method_classes

    row = results[method]
    if row["test"] >= row["vanilla"] - TOLERANCE:
        return
    assert method in DOCUMENTED, (
        f"{method}'s defaults end {-row['points']:.1f} points below vanilla "
        f"({row['test']:.3f} against {row['vanilla']:.3f}) and its docstring says nothing")
    assert DOCUMENTED[method] in method_classes()[method].__doc__


def test_dpsgd_defaults_warn_that_their_guarantee_is_void(results):
    # σ = 0.01 (the reference code's) buys no guarantee: fit says so
    assert "WeakPrivacyWarning" in results["dpsgd"]["warnings"]
