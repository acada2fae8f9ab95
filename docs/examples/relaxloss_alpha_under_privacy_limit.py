"""Choose RelaxLoss's α by k-fold grid search: the most accurate model within a privacy
budget, then audit the model chosen."""

import pandas as pd
from sklearn.model_selection import GridSearchCV, KFold

from skmia.audit import make_privacy_scorer
from skmia.datasets import fetch_location30
from skmia.defenses import RelaxLossClassifier
from skmia.model_selection import make_budget_refit, membership_split

BUDGET = 0.75  # the largest loss-attack AUC we accept

X, y = fetch_location30(return_X_y=True)
split = membership_split(X, y, random_state=1000)
X_train, y_train = split.target_train  # every row the model may be trained on
X_unseen, y_unseen = split.target_test  # kept out of the search: the audit's non-members

# Within each of the 3 folds, the privacy scorer takes the rows that fold's model was
# fitted on as members and the fold's held-out rows as non-members; half of each fit the
# loss attack's thresholds, the other half measure its AUC (seeded: every alpha is scored
# on the same halves). The refit rule keeps the most accurate alpha whose mean AUC is
# within the budget, and raises (listing every alpha) if there is none.
search = GridSearchCV(
    RelaxLossClassifier(upper=0.3, max_epochs=15, milestones=(), random_state=0),
    {"alpha": [0.5, 1.0, 2.0]},
    scoring={"accuracy": "accuracy", "attack_auc": make_privacy_scorer("loss")},
    refit=make_budget_refit(BUDGET, privacy="attack_auc", accuracy="accuracy"),
    cv=KFold(n_splits=3, shuffle=True, random_state=0),
)
search.fit(X_train, y_train)

table = pd.DataFrame({
    "alpha": search.cv_results_["param_alpha"],
    "accuracy (held-out folds)": search.cv_results_["mean_test_accuracy"],
    "loss-attack AUC": search.cv_results_["mean_test_attack_auc"],
})
print(table.round(3).to_string(index=False))
print(f"chosen: alpha={search.best_params_['alpha']} (AUC budget {BUDGET})")

# best_estimator_ is that alpha refit on every row of X_train: the model to deploy. Audit
# it as it is: its members are the rows it was refit on, its non-members rows it never
# saw; the same rule as in the search (half of each fit the attack, half score it).
final_model = search.best_estimator_
audit_auc = make_privacy_scorer("loss")(final_model, X_unseen, y_unseen)
test_accuracy = final_model.score(X_unseen, y_unseen)
print(f"deployed model: test accuracy {test_accuracy:.3f}, loss-attack AUC {audit_auc:.3f}")
