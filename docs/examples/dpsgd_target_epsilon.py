"""DP-SGD trained to a target ε, and what the attacks see of it."""

import numpy as np

from skmia.attacks import LossAttack, membership_signals
from skmia.datasets import make_purchase_like
from skmia.defenses import DPSGDClassifier, VanillaClassifier
from skmia.model_selection import membership_split

X, y = make_purchase_like(n_samples=5_000, random_state=0, return_X_y=True)
split = membership_split(X, y, random_state=1000)
n_members = len(split.target_train.y)  # 1,000

# delta must be well below 1 / n_members; the noise multiplier is chosen so that the
# run ends at an epsilon just below target_epsilon after max_epochs epochs.
short = {"max_epochs": 10, "milestones": (), "random_state": 0}
models = {"vanilla": VanillaClassifier(**short)}
for epsilon in (1.0, 8.0):
    models[f"DP-SGD, target ε={epsilon:g}"] = DPSGDClassifier(
        target_epsilon=epsilon, delta=1e-5, max_grad_norm=1.0, **short
    )

for name, model in models.items():
    model.fit(*split.target_train)
    signals, membership = membership_signals(model, split.target_train, split.target_test)
    # the loss attack's AUC is threshold-free: no shadow model needed to read it
    auc = LossAttack().fit(signals, membership).evaluate(signals, membership)["auc"]
    privacy = (f"ε = {model.epsilon_:.2f} at δ = {model.delta_:g}, noise multiplier "
               f"{model.noise_multiplier_:.2f}") if hasattr(model, "epsilon_") else "no guarantee"
    print(f"{name}: test accuracy {model.score(*split.target_test):.3f}, "
          f"loss-attack AUC {auc:.3f}; {privacy}")

# What ε promises: any membership test, by any adversary, has TPR <= e^ε · FPR + δ.
for name, model in models.items():
    if hasattr(model, "epsilon_"):
        bound = min(1.0, np.exp(model.epsilon_) * 0.01 + model.delta_)
        print(f"{name}: at 1% FPR, every attack's TPR is at most {bound:.3f}")
