"""Choose RelaxLoss's α by grid search: the most accurate model under a privacy limit."""

import numpy as np
import pandas as pd
from sklearn.model_selection import GridSearchCV, PredefinedSplit

from skmia.attacks import compute_signals
from skmia.datasets import fetch_location30
from skmia.defenses import RelaxLossClassifier
from skmia.metrics import attack_auc
from skmia.model_selection import membership_split

LIMIT = 0.72  # the largest loss-attack AUC we accept

X, y = fetch_location30(return_X_y=True)
split = membership_split(X, y, random_state=1000)
(X_members, y_members), (X_nonmembers, y_nonmembers) = split.target_train, split.target_test

# One audit split: train on the members, validate on the non-members.
X_audit = np.concatenate([X_members, X_nonmembers])
y_audit = np.concatenate([y_members, y_nonmembers])
audit = PredefinedSplit(np.r_[np.full(len(y_members), -1), np.zeros(len(y_nonmembers))])


def loss_attack_auc(estimator, X, y):
    """AUC of the loss attack: the members' losses against those of the rows scored."""
    member_loss = compute_signals(estimator, X_members, y_members)["loss"].to_numpy()
    nonmember_loss = compute_signals(estimator, X, y)["loss"].to_numpy()
    membership = np.r_[np.ones(len(member_loss)), np.zeros(len(nonmember_loss))]
    return attack_auc(membership, -np.r_[member_loss, nonmember_loss])


def most_accurate_under_limit(cv_results):
    """The index of the most accurate candidate whose loss-attack AUC is <= LIMIT."""
    auc = np.asarray(cv_results["mean_test_loss_auc"])
    accuracy = np.asarray(cv_results["mean_test_accuracy"])
    allowed = np.flatnonzero(auc <= LIMIT)
    if allowed.size == 0:
        raise ValueError(f"no candidate keeps the loss-attack AUC <= {LIMIT}; "
                         f"the lowest is {auc.min():.3f}")
    return int(allowed[np.argmax(accuracy[allowed])])


search = GridSearchCV(
    RelaxLossClassifier(upper=0.3, max_epochs=15, milestones=(), random_state=0),
    {"alpha": [1.0, 1.5, 2.0]},
    scoring={"accuracy": "accuracy", "loss_auc": loss_attack_auc},
    refit=most_accurate_under_limit,
    cv=audit,
)
search.fit(X_audit, y_audit)

table = pd.DataFrame({
    "alpha": search.cv_results_["param_alpha"],
    "test accuracy": search.cv_results_["mean_test_accuracy"],
    "loss-attack AUC": search.cv_results_["mean_test_loss_auc"],
})
print(table.round(3).to_string(index=False))
print(f"chosen: alpha={search.best_params_['alpha']} (AUC limit {LIMIT})")
# best_estimator_ is that alpha trained on every audit row: the model to deploy.
final_model = search.best_estimator_
