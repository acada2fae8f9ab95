"""The result of a defense audit: tables, the arrays behind them, save / load.

Files of a saved audit (``DefenseAudit.save(folder)``), named here and nowhere else:
``settings.json`` (how the audit was made), ``summary.csv`` and ``per_record.csv`` (the
tables, for people) and ``arrays.safetensors`` (φ of every model on every record, the
training masks, which records are canaries, each model's accuracies; for a defense that
releases other outputs than its network's, also the raw network's φ and the label-only
signal). Loading reads the arrays and recomputes the tables, so a loaded audit equals the
saved one; nothing is unpickled.
"""


import numpy as np
import pandas as pd

from .._rundir import AUDIT_RESULT_FILES as RESULT_FILES
from .._rundir import RunDirectory, summary_fprs, tpr_column
from ..metrics import tpr_at_fpr
from ._intervals import INTERVAL_PROCEDURE, pair_rates, record_tpr_at_fpr
from ._loo import LOO_ATTACKS, loo_lira_scores

__all__ = ["AUDIT_COLUMNS", "BLACK_BOX", "DEFENDED", "DefenseAudit", "INTERVAL_PROCEDURE",
           "LABEL_ONLY", "RESULT_FILES", "SUMMARY_COLUMNS", "WHITE_BOX", "label_only_phi",
           "method_rows"]

#: The threat model of each summary row. A defense whose outputs are its network's has
#: one, ``BLACK_BOX``; one that releases other outputs at inference (HAMP, MemGuard) is
#: audited under three: its released outputs (what it claims to protect), the labels
#: alone (which output modification keeps), and its raw network (a white-box adversary).
BLACK_BOX = "black-box"
DEFENDED = "black-box (defended outputs)"
LABEL_ONLY = "label-only"
WHITE_BOX = "white-box (raw outputs)"

#: The false-positive rates of the summary, as fractions (the summaries' rows of
#: :data:`skmia._rundir.FPR_TABLE`).
MAX_FPRS = summary_fprs()
_BOUNDS = ("", "_low", "_high")
#: The column :meth:`DefenseAudit.strongest` ranks the attacks by: the TPR at the lowest
#: FPR of the summary.
STRONGEST_AT = tpr_column(next(iter(MAX_FPRS)))
#: The rates of a summary row: AUC and TPR at each FPR with their intervals, and the
#: per-record-calibrated TPR at each FPR (no interval).
RATE_COLUMNS = [
    *[f"auc{end}" for end in _BOUNDS],
    *[f"{tpr_column(name)}{end}" for name in MAX_FPRS for end in _BOUNDS],
    *[f"record_{tpr_column(name)}" for name in MAX_FPRS],
]
# the empirical epsilon of the pooled pairs is no column: no theorem bounds epsilon from
# leave-one-out scores of dependent (record, model) pairs (docs/auditing.rst)
SUMMARY_COLUMNS = [
    "threat_model", "subset", "attack", "n_records", "member_pairs", "nonmember_pairs",
    *RATE_COLUMNS, "interval", "test_accuracy", "test_accuracy_std", "train_accuracy",
    "train_accuracy_std", "epsilon", "n_models", "note",
]
#: Columns of the per-method table of a defense audit (``skmia audit``), in order: the
#: rates of the canaries and of the other records (the population) under the strongest
#: attack, per threat model.
AUDIT_COLUMNS = [
    "method", "threat_model", "n_models", "attack", "test_accuracy", "test_accuracy_std",
    *[f"{part}_{rate}" for part in ("canary", "population") for rate in RATE_COLUMNS],
    "epsilon", "interval", "note",
]
_ARRAYS = ("phi", "in_mask", "is_canary", "record_index", "test_accuracy",
           "train_accuracy", "epsilon")
#: arrays of a defense that releases modified outputs (absent for the others)
OPTIONAL_ARRAYS = ("phi_raw", "label_only")


def label_only_phi(correct_fraction, n_queries):
    """The label-only signal on a logit scale, for leave-one-out LiRA.

    ``log((k + 1/2) / (Q - k + 1/2))`` for ``k`` of ``Q`` perturbed copies classified
    correctly: monotone in ``k``, finite at ``k = 0`` and ``k = Q`` (the 1/2 is the
    Jeffreys prior's), so each record's IN and OUT counts can be fitted with Gaussians
    as LiRA fits φ.

    Parameters
    ----------
    correct_fraction : array-like
        ``k / Q``, the fraction of a record's perturbed copies still classified correctly
        (:func:`skmia.attacks.label_only_signals` averaged over its queries).
    n_queries : int
        ``Q``.

    Returns
    -------
    phi : ndarray of float64
    """
    k = np.asarray(correct_fraction, dtype=np.float64) * n_queries
    return np.log(k + 0.5) - np.log(n_queries - k + 0.5)


def _unresolved(member, score, max_fpr):
    """Why the pooled pairs cannot resolve the TPR at ``max_fpr`` (empty if they can)."""
    n_neg = int(np.sum(~member))
    if n_neg * max_fpr * (1 + 1e-9) < 1:
        return (f"TPR at {max_fpr:g} FPR unresolved: {n_neg} non-member pairs, fewer than "
                f"1/FPR = {round(1 / max_fpr)}")
    if not tpr_at_fpr(member, score, max_fpr=max_fpr).resolved:
        return (f"TPR at {max_fpr:g} FPR unresolved: more than {max_fpr:g} of the non-member "
                "pairs tie at the top score")
    return ""


def subset_row(in_mask, score):
    """Pair counts, AUC and TPR at each FPR of :data:`MAX_FPRS` over the pooled pairs
    with their two-way bootstrap intervals (:func:`~skmia.audit._intervals.pair_rates`),
    the per-record-calibrated TPR at each FPR, the interval's procedure and a note."""
    member, flat = in_mask.ravel(), score.ravel()
    row = {"member_pairs": int(member.sum()), "nonmember_pairs": int((~member).sum())}
    notes = []
    if not np.all(np.isfinite(flat)):
        notes.append("scores undefined: per-record variance needs at least 2 IN and 2 OUT "
                     "reference models per record (at keep=0.5, 6 models or more)")
    elif row["member_pairs"] == 0 or row["nonmember_pairs"] == 0:
        notes.append("no member or no non-member pair")
    else:
        rates = pair_rates(score, in_mask, list(MAX_FPRS.values()))
        row.update({f"auc{end}": rates[f"auc{end}"] for end in _BOUNDS})
        row["interval"] = INTERVAL_PROCEDURE
        for i, (name, max_fpr) in enumerate(MAX_FPRS.items()):
            note = _unresolved(member, flat, max_fpr)
            if not note:
                row.update({f"{tpr_column(name)}{end}": rates[f"tpr{end}"][i]
                            for end in _BOUNDS})
            per_record, _, record_note = record_tpr_at_fpr(score, in_mask, max_fpr)
            row[f"record_{tpr_column(name)}"] = per_record
            notes += [note, record_note]
    row["note"] = "; ".join(n for n in notes if n)
    return row


def _record_advantage(score, in_mask):
    """Per record: P(IN score > OUT score) - P(IN score < OUT score) over its model pairs,
    i.e. 2 AUC - 1 of its own scores (0: the attack cannot tell; 1: always right)."""
    out = np.empty(len(score))
    step = max(1, 2_000_000 // max(1, score.shape[1] ** 2))
    for start in range(0, len(score), step):
        s, m = score[start:start + step], in_mask[start:start + step]
        diff = np.sign(s[:, :, None] - s[:, None, :])  # [i, a, b] = sign(s_a - s_b)
        pairs = m[:, :, None] & ~m[:, None, :]  # a IN, b OUT
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + step] = (np.sum(diff * pairs, axis=(1, 2))
                                       / pairs.sum(axis=(1, 2)))
    return out


def _three_d(phi):
    phi = np.asarray(phi, dtype=np.float64)
    return phi[:, :, None] if phi.ndim == 2 else phi


class DefenseAudit:
    """What :func:`audit_defense` measured: tables, and the arrays they are computed from.

    Parameters
    ----------
    phi : ndarray of shape (n_records, n_models, n_aug)
        Logit-scaled confidence of every model on every audited record (per augmented
        view; one view without ``augment``), from the outputs the model releases.
    in_mask : ndarray of bool of shape (n_records, n_models)
        Whether the record was in the model's training set.
    is_canary : ndarray of bool of shape (n_records,)
        Which records are canaries.
    record_index : ndarray of int64 of shape (n_records,)
        Row of each record in the ``X`` given to the audit.
    test_accuracy, train_accuracy, epsilon : ndarray of shape (n_models,)
        Each model's accuracy on the held-out test part and on its own training records
        of the pool, and its accounted ε (DP-SGD; NaN for other methods).
    settings : dict
        How the audit was made (JSON-serialisable); ``label_only_queries`` is the number
        of perturbed copies behind ``label_only``.
    phi_raw : ndarray of shape (n_records, n_models, n_aug), default=None
        For a defense that releases other outputs than its network's (HAMP, MemGuard):
        φ of the raw network, what a white-box adversary reads. None otherwise.
    label_only : ndarray of shape (n_records, n_models), default=None
        For such a defense: the fraction of each record's perturbed copies that each
        model still classifies correctly (:func:`skmia.attacks.label_only_signals`).

    Attributes
    ----------
    threat_models_ : dict of str to ndarray of shape (n_records, n_models, n_aug)
        The signal each threat model's attacks read: ``{"black-box": phi}`` for a
        defense whose outputs are its network's; for one that releases others,
        :data:`DEFENDED` (``phi``), :data:`LABEL_ONLY` (:func:`label_only_phi` of
        ``label_only``) and :data:`WHITE_BOX` (``phi_raw``). The first is the threat
        model the defense claims to stop.
    threat_scores_ : dict of str to dict of str to ndarray of shape (n_records, n_models)
        Per threat model and attack (:data:`LOO_ATTACKS`), the leave-one-out LiRA score
        of every (record, model) pair on that threat model's signal.
    scores_ : dict of str to ndarray of shape (n_records, n_models)
        ``threat_scores_`` of the first threat model.
    summary_ : pandas.DataFrame
        One row per threat model, subset (``canaries``, ``others``, ``all``) and attack:
        pair counts; AUC and TPR at 0.1 % and 1 % FPR over the pooled pairs, each with
        its 95 % interval (``_low``, ``_high``) from a two-way bootstrap over models and
        records (``interval`` names it; see :func:`~skmia.audit._intervals.pair_rates`:
        it assumes models drawn independently from the training algorithm and records
        drawn from the pool, and covers the mean of the rate over reruns of the audit;
        pairs are not taken as independent); the per-record-calibrated TPR at each FPR
        (``record_tpr_at_*``: each record's threshold on its own OUT scores, Jälkö et
        al., arXiv:2605.25819); NaN and a ``note`` where the pairs (or the records' OUT
        scores) cannot resolve a rate; the models' mean and standard deviation of test
        and train accuracy, the mean accounted ε. No empirical ε: no theorem bounds ε
        from pooled leave-one-out pairs.
    attack_ : str
        Under the first threat model, the attack that finds most: the higher TPR at 0.1
        % FPR on the canaries (on all records without canaries; the fixed variance on
        ties). :meth:`strongest` gives it for any threat model.
    per_record_ : pandas.DataFrame
        Under ``attack_``, one row per record, sorted by risk: ``record``, ``canary``,
        ``advantage`` (P(IN score > OUT score) - P(IN score < OUT score) over the
        record's own IN / OUT model pairs), ``mean_score_in``, ``mean_score_out``.
    """

    def __init__(self, phi, in_mask, is_canary, record_index, test_accuracy,
                 train_accuracy, epsilon, settings, phi_raw=None, label_only=None):
        self.phi = _three_d(phi)
        self.in_mask = np.asarray(in_mask, dtype=bool)
        self.is_canary = np.asarray(is_canary, dtype=bool)
        self.record_index = np.asarray(record_index, dtype=np.int64)
        self.test_accuracy = np.asarray(test_accuracy, dtype=np.float64)
        self.train_accuracy = np.asarray(train_accuracy, dtype=np.float64)
        self.epsilon = np.asarray(epsilon, dtype=np.float64)
        self.settings = dict(settings)
        if (phi_raw is None) != (label_only is None):
            raise ValueError("phi_raw and label_only come together (a defense that "
                             "releases modified outputs) or not at all.")
        self.phi_raw = None if phi_raw is None else _three_d(phi_raw)
        self.label_only = (None if label_only is None
                           else np.asarray(label_only, dtype=np.float64))
        self.threat_models_ = self._threat_models()
        self.threat_scores_ = {
            name: {attack: loo_lira_scores(signal, self.in_mask, fix_variance=fixed)
                   for attack, fixed in LOO_ATTACKS.items()}
            for name, signal in self.threat_models_.items()}
        self.scores_ = self.threat_scores_[self.primary_threat_model]
        self.summary_ = self._summary()
        self.attack_ = self.strongest()
        self.per_record_ = self._per_record()

    def _threat_models(self):
        if self.phi_raw is None:
            return {BLACK_BOX: self.phi}
        if "label_only_queries" not in self.settings:
            raise ValueError("settings must hold label_only_queries, the number of "
                             "perturbed copies behind label_only.")
        signal = label_only_phi(self.label_only, int(self.settings["label_only_queries"]))
        return {DEFENDED: self.phi, LABEL_ONLY: signal[:, :, None], WHITE_BOX: self.phi_raw}

    @property
    def primary_threat_model(self):
        """The threat model the defense claims to stop (the first of ``threat_models_``)."""
        return next(iter(self.threat_models_))

    @property
    def n_models(self):
        """Number of models trained."""
        return self.in_mask.shape[1]

    def subsets(self):
        """``name -> boolean mask over records``: canaries (if any), others, all."""
        parts = {}
        if self.is_canary.any():
            parts["canaries"] = self.is_canary
        parts["others"] = ~self.is_canary
        parts["all"] = np.ones_like(self.is_canary)
        return parts

    def _summary(self):
        utility = {
            "test_accuracy": self.test_accuracy.mean(),
            "test_accuracy_std": self.test_accuracy.std(),
            "train_accuracy": self.train_accuracy.mean(),
            "train_accuracy_std": self.train_accuracy.std(),
            "epsilon": np.nan if np.isnan(self.epsilon).all() else np.nanmean(self.epsilon),
            "n_models": self.n_models,
        }
        rows = []
        for threat_model, signal in self.threat_models_.items():
            for subset, rows_mask in self.subsets().items():
                for attack, fixed in LOO_ATTACKS.items():
                    # fixed variance pools the subset's records, as the authors' code
                    # does on the canaries it is given
                    score = (loo_lira_scores(signal[rows_mask], self.in_mask[rows_mask],
                                             fix_variance=True)
                             if fixed else self.threat_scores_[threat_model][attack][rows_mask])
                    rows.append({"threat_model": threat_model, "subset": subset,
                                 "attack": attack, "n_records": int(rows_mask.sum()),
                                 **subset_row(self.in_mask[rows_mask], score), **utility})
        return pd.DataFrame(rows).reindex(columns=SUMMARY_COLUMNS)

    def strongest(self, threat_model=None):
        """The attack that finds most under ``threat_model`` (default: the first): the
        higher TPR at 0.1 % FPR on the canaries (all records without canaries; the fixed
        variance on ties)."""
        threat_model = threat_model or self.primary_threat_model
        first = "canaries" if self.is_canary.any() else "all"
        rows = self.summary_[(self.summary_["subset"] == first)
                             & (self.summary_["threat_model"] == threat_model)]
        tpr = rows.set_index("attack")[STRONGEST_AT].fillna(-1.0)
        fixed, per_record = list(LOO_ATTACKS)
        return per_record if tpr[per_record] > tpr[fixed] else fixed

    def _per_record(self):
        score = self.scores_[self.attack_]
        with np.errstate(invalid="ignore"):
            mean_in = np.nanmean(np.where(self.in_mask, score, np.nan), axis=1)
            mean_out = np.nanmean(np.where(~self.in_mask, score, np.nan), axis=1)
        table = pd.DataFrame({
            "record": self.record_index, "canary": self.is_canary,
            "advantage": _record_advantage(score, self.in_mask),
            "mean_score_in": mean_in, "mean_score_out": mean_out,
        })
        table["_gap"] = mean_in - mean_out
        table = table.sort_values(["advantage", "_gap"], ascending=False, kind="stable")
        return table.drop(columns="_gap").reset_index(drop=True)

    def summary_row(self, subset="canaries", threat_model=None):
        """The summary's row of ``subset`` under ``threat_model`` (default: the first)
        and its strongest attack, as a dict."""
        threat_model = threat_model or self.primary_threat_model
        attack = self.strongest(threat_model)
        rows = self.summary_[(self.summary_["subset"] == subset)
                             & (self.summary_["threat_model"] == threat_model)
                             & (self.summary_["attack"] == attack)]
        return {**rows.iloc[0].to_dict(), "attack": attack} if len(rows) else {}

    # ------------------------------------------------------------------ files
    def save(self, folder):
        """Write the audit to ``folder`` (created): arrays, tables, settings (last).

        Parameters
        ----------
        folder : path-like
            Where to write; files already there are replaced, one by one atomically.

        Returns
        -------
        folder : pathlib.Path
        """
        from safetensors.numpy import save as save_arrays

        folder = RunDirectory(folder)
        arrays = {name: np.ascontiguousarray(getattr(self, name))
                  for name in (*_ARRAYS, *OPTIONAL_ARRAYS) if getattr(self, name) is not None}
        arrays["in_mask"] = arrays["in_mask"].astype(np.uint8)
        arrays["is_canary"] = arrays["is_canary"].astype(np.uint8)
        folder.write_bytes(RESULT_FILES["arrays"], data=save_arrays(arrays))
        folder.write_bytes(RESULT_FILES["summary"],
                           data=self.summary_.to_csv(index=False).encode())
        folder.write_bytes(RESULT_FILES["per_record"],
                           data=self.per_record_.to_csv(index=False).encode())
        folder.write_json(RESULT_FILES["settings"], document=self.settings)
        folder = folder.root
        return folder

    @classmethod
    def load(cls, folder):
        """Read an audit that :meth:`save` wrote (no pickle: safetensors and JSON).

        Parameters
        ----------
        folder : path-like

        Returns
        -------
        audit : DefenseAudit
        """
        from safetensors import SafetensorError
        from safetensors.numpy import load as load_arrays

        folder = RunDirectory(folder)
        path = folder.path(RESULT_FILES["arrays"])
        try:
            arrays = load_arrays(folder.read_bytes(RESULT_FILES["arrays"]))
        except FileNotFoundError:
            raise FileNotFoundError(f"{str(path)!r} does not exist: not a saved audit") from None
        except SafetensorError as exc:
            raise ValueError(f"{str(path)!r} is not a safetensors file ({exc})") from exc
        missing = [name for name in _ARRAYS if name not in arrays]
        if missing:
            raise ValueError(f"{str(path)!r} lacks the arrays {missing}")
        settings = folder.read_json(RESULT_FILES["settings"], spec=dict)
        return cls(**{name: arrays[name] for name in (*_ARRAYS, *OPTIONAL_ARRAYS)
                      if name in arrays}, settings=settings)

    def __repr__(self):
        return (f"DefenseAudit(n_records={len(self.is_canary)}, "
                f"n_canaries={int(self.is_canary.sum())}, n_models={self.n_models}, "
                f"attack_={self.attack_!r})")


def method_rows(method, audit):
    """Rows of :data:`AUDIT_COLUMNS` from a method's :class:`DefenseAudit`: one per
    threat model it was audited under."""
    return [method_row(method, audit, threat) for threat in audit.threat_models_]


def method_row(method, audit, threat_model=None):
    """One row of :data:`AUDIT_COLUMNS` from a method's :class:`DefenseAudit`, under
    ``threat_model`` (default: the one the defense claims to stop)."""
    threat_model = threat_model or audit.primary_threat_model
    canary = audit.summary_row("canaries", threat_model)
    others = audit.summary_row("others", threat_model)
    row = {"method": method, "threat_model": threat_model, "n_models": audit.n_models,
           "attack": audit.strongest(threat_model),
           "test_accuracy": canary.get("test_accuracy", others.get("test_accuracy")),
           "test_accuracy_std": others.get("test_accuracy_std"),
           "epsilon": others.get("epsilon"),
           "interval": others.get("interval", canary.get("interval")),
           "note": "; ".join(dict.fromkeys(n for n in (canary.get("note"), others.get("note"))
                                           if isinstance(n, str) and n))}
    for part, values in (("canary", canary), ("population", others)):
        row.update({f"{part}_{rate}": values.get(rate) for rate in RATE_COLUMNS})
    return row
