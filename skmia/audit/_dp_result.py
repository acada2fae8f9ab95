"""The result of a DP audit: the claim, the lower bounds, the verdict, the scores."""

import numpy as np
import pandas as pd

__all__ = ["BOUND_COLUMNS", "DPAudit"]

#: The columns of :attr:`DPAudit.bounds_` (one row per method).
BOUND_COLUMNS = ["epsilon", "claimed_epsilon", "violated", "confidence", "delta", "threshold",
                 "max_epsilon", "limited_by_counts", "counts", "assumption"]


class DPAudit:
    """What :func:`audit_dp` (one run) or :func:`audit_dp_runs` (many runs) finds.

    Attributes
    ----------
    claimed_epsilon_ : float
        The ε audited: the one given, else the estimator's accountant's.
    bounds_ : pandas.DataFrame
        One row per method (index): ``epsilon`` (the lower bound), ``claimed_epsilon``,
        ``violated`` (bound > claim), ``confidence`` (of that bound), ``delta``,
        ``threshold`` (the rule or the value used), ``max_epsilon`` (the largest bound
        these counts could give, whatever the scores), ``limited_by_counts`` (the bound
        is that largest one: more canaries could show more), ``counts`` (the counts
        behind the bound, a dict) and ``assumption`` (what the theorem needs).
    violated_ : bool
        True when some bound exceeds the claim: the claim is violated at
        ``settings_["confidence"]``.
    epsilon_ : float
        The largest lower bound.
    scores_ : pandas.DataFrame
        One row per canary: ``member`` (its coin), ``score`` (what the bounds used) and
        every other score kept (white box: ``step``, ``update``, ``weights``, ``draws``).
    settings_ : dict
        How the audit was made.
    estimator_ : estimator or None
        The trained model (one run).
    """

    def __init__(self, *, claimed_epsilon, bounds, scores, settings, estimator=None):
        self.claimed_epsilon_ = float(claimed_epsilon)
        self.bounds_ = bounds
        self.scores_ = scores
        self.settings_ = dict(settings)
        self.estimator_ = estimator
        self.epsilon_ = float(bounds["epsilon"].max()) if len(bounds) else 0.0
        self.violated_ = bool(bounds["violated"].any())

    @classmethod
    def from_bounds(cls, bounds, *, claimed_epsilon, membership, score, scores=None,
                    settings=None, estimator=None):
        """Build the result from ``{method: EpsilonBound}``."""
        rows = {method: _bound_row(b, claimed_epsilon) for method, b in bounds.items()}
        table = pd.DataFrame.from_dict(rows, orient="index", columns=BOUND_COLUMNS)
        table.index.name = "method"
        per_canary = {"member": np.asarray(membership, dtype=bool),
                      "score": np.asarray(score, dtype=np.float64)}
        for name, values in (scores or {}).items():
            per_canary.setdefault(name, np.asarray(values, dtype=np.float64))
        return cls(claimed_epsilon=claimed_epsilon, bounds=table,
                   scores=pd.DataFrame(per_canary), settings=settings or {},
                   estimator=estimator)

    def summary(self):
        """A few lines for people: claim, each bound, verdict."""
        lines = [f"claimed ε = {self.claimed_epsilon_:.3g} at δ = "
                 f"{self.settings_.get('delta', float('nan')):g}"]
        for method, row in self.bounds_.iterrows():
            note = " (limited by the number of canaries)" if row["limited_by_counts"] else ""
            lines.append(f"  {method}: ε ≥ {row['epsilon']:.3g} at {row['confidence']:.3g} "
                         f"confidence (at most {row['max_epsilon']:.3g} possible){note}")
        verdict = "VIOLATED" if self.violated_ else "not violated"
        lines.append(f"claim {verdict} at {self.settings_.get('confidence', float('nan')):g} "
                     "confidence")
        return "\n".join(lines)

    def __repr__(self):
        return (f"DPAudit(claimed_epsilon={self.claimed_epsilon_:.3g}, "
                f"epsilon={self.epsilon_:.3g}, violated={self.violated_})")


def _bound_row(bound, claimed_epsilon):
    epsilon = float(bound.epsilon)
    return {"epsilon": epsilon, "claimed_epsilon": float(claimed_epsilon),
            "violated": epsilon > claimed_epsilon, "confidence": float(bound.confidence),
            "delta": float(bound.delta), "threshold": bound.threshold,
            "max_epsilon": float(bound.max_epsilon),
            "limited_by_counts": bool(bound.limited_by_counts),
            "counts": dict(bound.counts), "assumption": bound.assumption}
