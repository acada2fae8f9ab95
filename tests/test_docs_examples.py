"""The scripts of docs/examples run, and show what the docs say they show."""

import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "docs" / "examples"
TESTED = ("relaxloss_location", "attacks_grid_search", "dpsgd_target_epsilon",
          "relaxloss_alpha_under_privacy_limit")


def run_example(name):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="__main__")


def test_every_example_is_tested_and_included_in_the_docs():
    assert sorted(p.stem for p in EXAMPLES.glob("*.py")) == sorted(TESTED)
    page = (EXAMPLES.parent / "examples.rst").read_text()
    for name in TESTED:
        assert f".. literalinclude:: examples/{name}.py" in page


def test_relaxloss_on_location30(location_data_home, capsys):
    results = run_example("relaxloss_location")["results"]
    vanilla, relax = results["vanilla"], results["relaxloss"]
    # the vanilla shadow's thresholds no longer fit the relaxed target...
    assert relax.loc["loss", "accuracy"] < vanilla.loc["loss", "accuracy"] - 0.2
    # ...and the members' losses are closer to the non-members' (lower AUC)
    assert relax.loc["loss", "auc"] < vanilla.loc["loss", "auc"] - 0.02
    out = capsys.readouterr().out
    assert "vanilla: train accuracy" in out and "relaxloss: train accuracy" in out


def test_attacks_in_grid_search():
    search = run_example("attacks_grid_search")["search"]
    results = search.cv_results_
    assert len(results["params"]) == 7
    assert search.best_score_ == pytest.approx(np.max(results["mean_test_tpr@1%fpr"]))
    assert np.min(results["mean_test_auc"]) > 0.8  # the target overfits: every attack sees it
    # one global threshold beats 100 per-class thresholds fitted on ~7 records each
    loss = [i for i, p in enumerate(results["params"]) if "attack__per_class" in p]
    per_class = {results["params"][i]["attack__per_class"]: results["mean_test_accuracy"][i]
                 for i in loss}
    assert per_class[False] > per_class[True]


def test_dpsgd_with_a_target_epsilon():
    models = run_example("dpsgd_target_epsilon")["models"]
    for epsilon in (1.0, 8.0):
        model = models[f"DP-SGD, target ε={epsilon:g}"]
        assert 0.9 * epsilon < model.epsilon_ <= epsilon
        assert model.delta_ == 1e-5
    low, high = models["DP-SGD, target ε=1"], models["DP-SGD, target ε=8"]
    assert low.noise_multiplier_ > high.noise_multiplier_


def test_choosing_alpha_within_a_privacy_budget(location_data_home, capsys):
    namespace = run_example("relaxloss_alpha_under_privacy_limit")
    search, budget = namespace["search"], namespace["BUDGET"]
    assert "X_members" not in namespace and "loss_attack_auc" not in namespace
    assert search.n_splits_ == 3  # k-fold, not one predefined split
    auc = np.asarray(search.cv_results_["mean_test_attack_auc"])
    accuracy = np.asarray(search.cv_results_["mean_test_accuracy"])
    best = search.best_index_
    assert auc[best] <= budget
    assert accuracy[best] == accuracy[auc <= budget].max()
    assert (auc > budget).any()  # the budget rules a candidate out
    # larger alpha, less leakage (the point of RelaxLoss)
    alphas = np.asarray(search.cv_results_["param_alpha"], dtype=float)
    assert np.all(np.diff(auc[np.argsort(alphas)]) < 0)
    # the model deployed is refit on exactly X_train, and audited as such
    final = namespace["final_model"]
    members, _ = final.training_rows()
    np.testing.assert_array_equal(members, namespace["X_train"])
    assert 0.5 < namespace["audit_auc"] < 1
    assert "deployed model: test accuracy" in capsys.readouterr().out
    # the README's section "Choose a defense's settings for privacy" quotes this run
    readme = (EXAMPLES.parents[1] / "README.md").read_text()
    section = readme.split("## Choose a defense's settings for privacy")[1].split("\n## ")[0]
    search = namespace["search"]
    best = search.best_index_
    quoted = (f"α = {search.best_params_['alpha']} (held-out accuracy "
              f"{search.cv_results_['mean_test_accuracy'][best]:.3f}, loss-attack AUC "
              f"{search.cv_results_['mean_test_attack_auc'][best]:.3f}")
    assert quoted in " ".join(section.split())
    assert (f"test accuracy {namespace['test_accuracy']:.3f} and AUC "
            f"{namespace['audit_auc']:.3f}") in " ".join(section.split())
