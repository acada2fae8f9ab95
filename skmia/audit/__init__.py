"""Audits: how much a training algorithm (a defense), or one fitted model, leaks.

:func:`make_canaries` inserts records that are easy to memorise into a pool;
:func:`audit_defense` trains many models of a defense on balanced halves of it and
attacks every (record, model) pair with leave-one-out LiRA, reporting TPR at low FPR on
the canaries beside the other records, at the test accuracy the defense reaches
(Aerni, Zhang & Tramèr, CCS 2024, arXiv:2404.17399). The result is a
:class:`DefenseAudit`. :func:`audit_model` audits one fitted model instead (any
classifier, pipeline or torch module) with the strongest attacks its inputs allow:
thresholds, population attacks, and LiRA / RMIA against a bank of reference models
(Carlini et al., arXiv:2112.03570; Zarifzadeh et al., arXiv:2312.03262).

:func:`audit_dp` checks a DP claim in one training (canaries in by fair coins, one-run
ε lower bounds of Steinke et al., arXiv:2305.08846, and Mahloujifar et al.,
arXiv:2410.22235; white-box gradient canaries for DP-SGD), :func:`audit_dp_runs` over
many trainings calibrated on disjoint reference runs; both return a :class:`DPAudit`.
:func:`last_iterate_epsilon` is the heuristic ε of DP-SGD's last model (arXiv:2410.06186).
:func:`make_privacy_scorer` scores how much a fitted model leaks, for ``GridSearchCV``.
"""

from .._lazy import lazy_names

#: each public name and the module defining it, imported on first use (PEP 562): reading
#: a saved audit (``skmia report``) needs neither torch nor opacus, the defenses do
_WHERE = {
    "CANARY_KINDS": "_canaries", "Canaries": "_canaries", "make_canaries": "_canaries",
    "audit_defense": "_defense", "check_audit_folder": "_defense",
    "ONE_RUN_METHODS": "_dp", "UnreachableClaimWarning": "_dp", "audit_dp": "_dp",
    "last_iterate_epsilon": "_dp_heuristic",
    "DPAudit": "_dp_result",
    "MANY_RUN_METHODS": "_dp_runs", "audit_dp_runs": "_dp_runs",
    "LOO_ATTACKS": "_loo", "loo_lira_scores": "_loo",
    "MODEL_AUDIT_COLUMNS": "_model", "audit_model": "_model",
    "DefenseAudit": "_result",
    "PRIVACY_ATTACKS": "_scorers", "PRIVACY_METRICS": "_scorers",
    "make_privacy_scorer": "_scorers",
}

__all__ = [
    "CANARY_KINDS",
    "LOO_ATTACKS",
    "MANY_RUN_METHODS",
    "MODEL_AUDIT_COLUMNS",
    "ONE_RUN_METHODS",
    "PRIVACY_ATTACKS",
    "PRIVACY_METRICS",
    "Canaries",
    "DPAudit",
    "DefenseAudit",
    "UnreachableClaimWarning",
    "audit_defense",
    "audit_dp",
    "audit_dp_runs",
    "audit_model",
    "check_audit_folder",
    "last_iterate_epsilon",
    "loo_lira_scores",
    "make_canaries",
    "make_privacy_scorer",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
