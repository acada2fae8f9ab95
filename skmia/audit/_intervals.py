"""Rates over the (record, model) pairs of a many-model audit, and intervals that hold.

numpy only. A defense audit scores every (record, model) pair. Those pairs are not
independent trials: one record's pairs share the record (a canary that every model
memorises), one model's pairs share the model (a model that overfits more). A
Clopper-Pearson interval that counts pairs as independent coins is far too narrow: on
Location30, each seed's interval held the other seeds' estimates in 2 of 12 cases (issue
28). The interval here resamples what is random in a rerun of the audit, the models and
the records, together:

**Two-way (pigeonhole) bootstrap** (Owen, Ann. Appl. Stat. 2007; McCullagh, Bernoulli
2000). Each resample draws the records with replacement (record ``i`` drawn ``w_i``
times) and, independently, the models with replacement (model ``k`` drawn ``v_k``
times); pair ``(i, k)`` then counts ``w_i v_k`` times in the pooled AUC and TPR at FPR
(threshold included: it is chosen again on each resample's non-member pairs). The
interval is ``estimate ± t · sqrt(K / (K - 1)) · se`` (``se`` the standard deviation
over 200 resamples (enough for a standard error, Efron &
Tibshirani 1993, §6.4) drawn from a fixed seed, so that one audit always prints the same
interval; ``t`` Student's 97.5 % quantile with ``K - 1`` degrees of freedom for ``K``
models, the usual correction for few clusters), clipped to [0, 1].

It assumes that the models are independent draws of the training algorithm and that
the records are exchangeable draws from the pool (canaries from the canary
distribution); it covers the mean of the pooled rate over reruns of the audit that draw
both afresh (new seeds: new models, masks and canaries). The scores are resampled as
they are: the leave-one-out calibration of each score on the other models is not redone
per resample, which the t quantile makes up for. In a simulation with the audit's
dependence (``tests/audit/test_audit_intervals.py``: 150 records, 16 models, 200 reruns) the
intervals covered the mean over reruns in 92.5 % (AUC), 99.5 % (TPR at 0.1 % FPR) and
98 % (TPR at 1 % FPR) of the reruns; the Clopper-Pearson interval over pairs in 34 % and
42.5 %. The TPR intervals err wide: the two-way bootstrap counts the pair-level noise
more than once (Owen).

The per-record-calibrated TPR (Jälkö, Pradhan, Räisä & Honkela, arXiv:2605.25819) sets
each record's own threshold at the target FPR on its OUT scores, as an adversary who
can calibrate on that very record would, and averages the TPR of its IN scores over the
records; a record with fewer than ``1 / FPR`` OUT scores cannot resolve the rate.
"""

import numpy as np

__all__ = ["CONFIDENCE", "INTERVAL_PROCEDURE", "N_RESAMPLES", "pair_rates",
           "record_tpr_at_fpr"]

#: What the intervals of a defense audit's tables are, in words.
INTERVAL_PROCEDURE = ("95 %, two-way bootstrap over models and records (200 resamples, "
                      "t with models - 1 degrees of freedom)")
#: Resamples of the two-way bootstrap, its seed, its coverage.
N_RESAMPLES = 200
SEED = 0
CONFIDENCE = 0.95
# a tolerance so that an FPR of 0.001 with 1,000 non-member pairs allows exactly one false
# positive, as skmia.metrics.tpr_at_fpr does
_TOLERANCE = 1 + 1e-9
# pair weights held at once: bounds the (resamples, pairs) temporaries
_BLOCK_VALUES = 2_000_000


class _SortedPairs:
    """The finite pairs of a (records, models) score matrix, sorted by score (highest
    first) and grouped into runs of equal scores."""

    def __init__(self, score, member):
        rows, cols = np.nonzero(np.isfinite(score))
        values = score[rows, cols]
        order = np.argsort(-values, kind="stable")
        self.record, self.model = rows[order], cols[order]
        self.member = member[rows, cols][order]
        values = values[order]
        self.starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])

    def __len__(self):
        return len(self.record)

    def statistics(self, weight, max_fprs):
        """AUC and TPR at each FPR of the pairs weighted by ``weight`` (resamples, pairs):
        arrays of shape (resamples,); NaN where a resample has no member or no
        non-member weight."""
        w_in, w_out = weight * self.member, weight * ~self.member
        if len(self.starts) < len(self):  # ties: one entry per run of equal scores
            w_in = np.add.reduceat(w_in, self.starts, axis=1)
            w_out = np.add.reduceat(w_out, self.starts, axis=1)
        # resamples' float32 weights are integers whose sums float32 holds exactly
        cum_in, cum_out = np.cumsum(w_in, axis=1), np.cumsum(w_out, axis=1)
        total_in, total_out = cum_in[:, -1], cum_out[:, -1]
        with np.errstate(invalid="ignore", divide="ignore"):
            # an IN pair beats the OUT pairs below its run and ties with half of its run's
            below = total_out[:, None] - cum_out + 0.5 * w_out
            auc = (np.einsum("ij,ij->i", w_in, below, dtype=np.float64)
                   / (total_in.astype(np.float64) * total_out))
            tprs = []
            for max_fpr in max_fprs:
                # cum_out rises: the runs within the FPR lead, and are counted
                count = np.sum(cum_out <= max_fpr * _TOLERANCE * total_out[:, None], axis=1)
                reached = np.take_along_axis(cum_in, np.maximum(count - 1, 0)[:, None],
                                             axis=1)[:, 0]
                tprs.append(np.where(count > 0, reached, 0.0) / total_in)
        bad = (total_in <= 0) | (total_out <= 0)
        return [np.where(bad, np.nan, s) for s in (auc, *tprs)]


def _resample_weights(pairs, n_records, n_models, size, rng):
    """Pair weights of ``size`` two-way resamples: ``w_record * v_model``."""
    w = rng.multinomial(n_records, np.full(n_records, 1.0 / n_records), size=size)
    v = rng.multinomial(n_models, np.full(n_models, 1.0 / n_models), size=size)
    # float32 holds these integer weights exactly (sums stay below 2**24 per entry)
    return w.astype(np.float32)[:, pairs.record] * v.astype(np.float32)[:, pairs.model]


def pair_rates(score, in_mask, max_fprs, *, n_resamples=N_RESAMPLES, confidence=CONFIDENCE,
               random_state=SEED):
    """Pooled AUC and TPR at each FPR over (record, model) pairs, with two-way intervals.

    Parameters
    ----------
    score : ndarray of shape (n_records, n_models)
        The attack's score of every pair, higher for members; NaN pairs are left out.
    in_mask : ndarray of bool of shape (n_records, n_models)
        Whether the record was in the model's training set (the pair is a member).
    max_fprs : sequence of float
        False-positive rates, as fractions.
    n_resamples : int, default=200
        Two-way bootstrap resamples (records and models drawn with replacement).
    confidence : float, default=0.95
        Coverage the intervals aim at.
    random_state : int, default=0
        Seed of the resamples: the same scores always give the same intervals.

    Returns
    -------
    rates : dict
        ``auc``, ``auc_low``, ``auc_high`` and, one entry per FPR, the lists ``tpr``,
        ``tpr_low``, ``tpr_high``. The point values equal
        :func:`skmia.metrics.attack_auc` and :func:`skmia.metrics.tpr_at_fpr` on the
        pooled pairs; the caller decides which rates the pairs resolve.

    Notes
    -----
    The interval is ``estimate ± t · sqrt(K / (K - 1)) · se``, clipped to [0, 1]: ``se``
    the standard deviation of the statistic over the two-way resamples, ``t`` the
    quantile of Student's t with ``K - 1`` degrees of freedom for ``K`` models (the
    fewer of models and records), the factor the usual small-sample correction for few
    clusters. It assumes the models are independent draws of the training algorithm and
    the records exchangeable draws from the pool, and covers the mean of the pooled
    rate over reruns of the audit that draw both afresh (see the module's text). It does
    not assume that pairs are independent. A TPR's interval is never narrower than the
    Clopper-Pearson interval of its member pairs (what independent pairs would give):
    at a TPR of 0 or 1 the resamples do not vary, and the bootstrap alone would give a
    point. An AUC of exactly 0 or 1 keeps that point for an interval. The t quantile
    and the factor make up for what the resamples miss with 8 to 32 models: few models
    to resample, and each score's leave-one-out calibration on the other models, which
    is not redone per resample.

    References
    ----------
    .. [1] A. B. Owen. "The pigeonhole bootstrap". Annals of Applied Statistics 1(2),
       2007.
    .. [2] P. McCullagh. "Resampling and exchangeable arrays". Bernoulli 6(2), 2000.
    .. [3] A. C. Cameron, D. L. Miller. "A practitioner's guide to cluster-robust
       inference". Journal of Human Resources 50(2), 2015.
    """
    # scipy.stats's t.ppf is scipy.special's stdtrit: the same floats, a lighter import
    from scipy.special import stdtrit

    score = np.asarray(score, dtype=np.float64)
    member = np.asarray(in_mask, dtype=bool)
    pairs = _SortedPairs(score, member)
    point = [p[0] for p in pairs.statistics(np.ones((1, len(pairs))), max_fprs)]
    rng = np.random.default_rng(random_state)
    block = max(1, min(n_resamples, _BLOCK_VALUES // max(1, len(pairs))))
    draws = [[] for _ in point]
    for start in range(0, n_resamples, block):
        size = min(block, n_resamples - start)
        weight = _resample_weights(pairs, *score.shape, size, rng)
        for values, stat in zip(draws, pairs.statistics(weight, max_fprs), strict=True):
            values.append(stat)
    clusters = max(2, min(score.shape))
    scale = stdtrit(clusters - 1, 0.5 + confidence / 2) * np.sqrt(clusters / (clusters - 1))
    half = [scale * np.nanstd(np.concatenate(v), ddof=1) for v in draws]
    low = [float(np.clip(p - h, 0.0, 1.0)) for p, h in zip(point, half, strict=True)]
    high = [float(np.clip(p + h, 0.0, 1.0)) for p, h in zip(point, half, strict=True)]
    n_in = int(member[np.isfinite(score)].sum())
    for i, tpr in enumerate(point[1:], start=1):  # never narrower than independent pairs'
        cp_low, cp_high = _clopper_pearson(round(tpr * n_in), n_in, confidence)
        low[i], high[i] = min(low[i], cp_low), max(high[i], cp_high)
    return {"auc": float(point[0]), "auc_low": low[0], "auc_high": high[0],
            "tpr": [float(p) for p in point[1:]], "tpr_low": low[1:], "tpr_high": high[1:]}


def _clopper_pearson(k, n, confidence):
    """The two-sided Clopper-Pearson interval of ``k`` successes in ``n`` trials."""
    from scipy.special import betaincinv  # scipy.stats's beta.ppf: the same floats

    alpha = 1.0 - confidence
    low = 0.0 if k == 0 else float(betaincinv(k, n - k + 1, alpha / 2))
    high = 1.0 if k == n else float(betaincinv(k + 1, n - k, 1 - alpha / 2))
    return low, high


def record_tpr_at_fpr(score, in_mask, max_fpr):
    """Per-record-calibrated TPR at ``max_fpr``: each record's threshold on its own OUT
    scores, its TPR over its IN scores, averaged over the records that resolve it.

    Record ``i`` flags a pair as a member when its score exceeds the
    ``(a + 1)``-th highest of the record's OUT scores, ``a = floor(max_fpr * n_out)``:
    the rule of highest TPR whose FPR on that record's OUT scores is at most ``max_fpr``.
    A record with fewer than ``1 / max_fpr`` OUT scores (``a = 0``), or whose highest
    ``a + 1`` OUT scores tie, cannot resolve the rate: it is left out, never counted as 0.

    Parameters
    ----------
    score : ndarray of shape (n_records, n_models)
        The attack's score of every (record, model) pair (finite).
    in_mask : ndarray of bool of shape (n_records, n_models)
        Whether the record was in the model's training set.
    max_fpr : float
        The false-positive rate, as a fraction.

    Returns
    -------
    tpr : float
        Mean over the resolved records (NaN when none is).
    n_resolved : int
        Records that resolve the rate.
    note : str
        Empty when every record resolves it, else why some (or all) do not.

    References
    ----------
    .. [1] J. Jälkö, R. Pradhan, O. Räisä, A. Honkela. arXiv:2605.25819, 2026 (pooled
       rates at low FPR are not calibrated per record).
    """
    score = np.asarray(score, dtype=np.float64)
    member = np.asarray(in_mask, dtype=bool)
    n_out = (~member).sum(axis=1)
    allowed = np.floor(max_fpr * n_out * _TOLERANCE).astype(np.int64)
    out_desc = -np.sort(-np.where(member, -np.inf, score), axis=1)  # OUT scores first
    cut_index = np.minimum(allowed, score.shape[1] - 1)[:, None]
    cut = np.take_along_axis(out_desc, cut_index, axis=1)[:, 0]
    cut = np.where(allowed >= n_out, -np.inf, cut)  # every OUT score allowed: flag all
    resolved = (allowed >= 1) & (out_desc[:, 0] > cut) & (member.any(axis=1))
    with np.errstate(invalid="ignore"):
        hits = np.sum((score > cut[:, None]) & member, axis=1) / member.sum(axis=1)
    n_resolved = int(resolved.sum())
    tpr = float(hits[resolved].mean()) if n_resolved else np.nan
    note = ""
    if n_resolved < len(score):
        few = int(np.sum(allowed < 1))
        name = f"per-record TPR at {max_fpr * 100:g} % FPR"
        why = (f"{few} records have fewer than 1/FPR = {round(1 / max_fpr)} OUT scores "
               f"({int(n_out.max())} at most)" if few
               else f"{len(score) - n_resolved} records have tied top OUT scores")
        note = (f"{name} unresolved: {why}" if not n_resolved
                else f"{name} over {n_resolved} of {len(score)} records: {why}")
    return tpr, n_resolved, note
