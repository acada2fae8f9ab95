"""Attacks are scikit-learn classifiers: compare and tune them with GridSearchCV."""

from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline

from skmia.attacks import (
    ConfidenceAttack,
    EntropyAttack,
    LossAttack,
    ModifiedEntropyAttack,
    NNAttack,
    membership_signals,
)
from skmia.datasets import make_purchase_like
from skmia.defenses import VanillaClassifier
from skmia.model_selection import attack_accuracy_scorer, make_tpr_at_fpr_scorer, membership_split

# A target model that overfits: synthetic data of Purchase100's shape (600 binary
# features, 100 classes), 1,000 members, 15 epochs.
X, y = make_purchase_like(n_samples=5_000, random_state=0, return_X_y=True)
split = membership_split(X, y, random_state=1000)
target = VanillaClassifier(max_epochs=15, milestones=(), random_state=0)
target.fit(*split.target_train)

# What an adversary sees when it queries the target, for records whose membership the
# auditor knows: one row of signals per record; membership 1 (member) or 0.
signals, membership = membership_signals(target, split.target_train, split.target_test)

# The auditor's view: cross-validation on the target's own signals. The grid runs over
# the attacks themselves (a one-step Pipeline) and over the NN attack's input. Score by
# AUC (scikit-learn's "roc_auc" reads decision_function), by the attack accuracy
# 0.5 * (TPR + TNR), and by the TPR at 1 % FPR; keep the attack that finds the most
# members at that low false-positive rate.
grid = [
    {"attack": [ConfidenceAttack(), EntropyAttack(), ModifiedEntropyAttack()]},
    {"attack": [LossAttack()], "attack__per_class": [True, False]},
    {"attack": [NNAttack(max_iter=100, random_state=0)], "attack__output": ["logit", "proba"]},
]
scoring = {
    "auc": "roc_auc",
    "accuracy": attack_accuracy_scorer,
    "tpr@1%fpr": make_tpr_at_fpr_scorer(max_fpr=0.01),
}
search = GridSearchCV(
    Pipeline([("attack", LossAttack())]), grid, scoring=scoring, refit="tpr@1%fpr",
    cv=StratifiedKFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(signals, membership)

results = search.cv_results_
for i, params in enumerate(results["params"]):
    option = params.get("attack__per_class", params.get("attack__output", ""))
    print(f"{type(params['attack']).__name__:22} {option!s:6} "
          f"AUC {results['mean_test_auc'][i]:.3f}  ACC {results['mean_test_accuracy'][i]:.3f}  "
          f"TPR@1%FPR {results['mean_test_tpr@1%fpr'][i]:.3f}")
print("best:", search.best_params_)
