"""Audits: how much a training algorithm (a defense) leaks about the records at risk.

:func:`make_canaries` inserts records that are easy to memorise into a pool;
:func:`audit_defense` trains many models of a defense on balanced halves of it and
attacks every (record, model) pair with leave-one-out LiRA, reporting TPR at low FPR on
the canaries beside the other records, at the test accuracy the defense reaches
(Aerni, Zhang & Tramèr, CCS 2024, arXiv:2404.17399). The result is a
:class:`DefenseAudit`.
"""

from ._canaries import CANARY_KINDS, Canaries, make_canaries
from ._defense import audit_defense
from ._loo import LOO_ATTACKS, loo_lira_scores
from ._result import DefenseAudit

__all__ = [
    "CANARY_KINDS",
    "LOO_ATTACKS",
    "Canaries",
    "DefenseAudit",
    "audit_defense",
    "loo_lira_scores",
    "make_canaries",
]
