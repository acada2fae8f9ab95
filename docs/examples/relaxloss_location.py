"""RelaxLoss on Location30, end to end: split, train, attack, read the numbers."""

from skmia.attacks import run_attacks
from skmia.datasets import fetch_location30
from skmia.defenses import RelaxLossClassifier, VanillaClassifier
from skmia.experiment import run_defaults
from skmia.model_selection import membership_split

# 1. Real data (5,010 Foursquare users, 446 binary features, 30 classes), read from the
#    data home ($SKMIA_DATA_HOME) or downloaded and verified. The reference protocol
#    splits it into disjoint members and non-members for a target and a shadow model.
X, y = fetch_location30(return_X_y=True)
split = membership_split(X, y, random_state=1000)

# 2. skmia's settings for this dataset (RelaxLoss alpha=1, upper=0.6), shortened to
#    20 epochs at a constant learning rate so that the example runs in seconds.
short = {"max_epochs": 20, "milestones": (), "random_state": 0}
targets = {
    "vanilla": VanillaClassifier(**{**run_defaults("vanilla", "location"), **short}),
    "relaxloss": RelaxLossClassifier(**{**run_defaults("relaxloss", "location"), **short}),
}
for model in targets.values():
    model.fit(*split.target_train)  # every row given to fit is a member
# The adversary's shadow model: vanilla training on its own, disjoint rows (the
# reference code's protocol).
shadow = VanillaClassifier(**{**run_defaults("vanilla", "location"), **short, "random_state": 1})
shadow.fit(*split.shadow_train)

# 3. Every attack of the reference code: fitted on the shadow's members / non-members,
#    evaluated on the target's. White-box attacks read gradient norms.
results = {}
for name, model in targets.items():
    results[name] = run_attacks(model, shadow, split, random_state=0)
    table = results[name]
    print(f"{name}: train accuracy {table['target_train_accuracy'].iloc[0]:.3f}, "
          f"test accuracy {table['target_test_accuracy'].iloc[0]:.3f}")
    print(table[["accuracy", "auc", "tpr_at_0.1%fpr"]].round(3).to_string(), "\n")
