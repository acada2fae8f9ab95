"""`skmia report` of an audit folder imports neither scikit-learn nor scipy.stats (issue
30: under 3 s idle), and the numpy-only code on its path gives the floats the
scikit-learn / scipy.stats code gave."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_curve

from skmia._rundir import AUDIT_FILES, RunDirectory
from skmia.audit import DefenseAudit
from skmia.audit._intervals import _clopper_pearson
from skmia.audit._loo import _normal_logpdf
from skmia.experiment._audit_dir import AUDIT_COLUMNS, method_rows
from skmia.metrics import attack_roc_curve, tpr_at_fpr


def _scores(kind, n, rng):
    if kind == "ties":
        return rng.integers(0, 7, n).astype(np.float64)
    if kind == "int":
        return rng.integers(-3, 3, n)
    if kind == "float32":
        return rng.normal(size=n).astype(np.float32)
    if kind == "bool":
        return rng.random(n) < 0.5
    return rng.normal(size=n)


def _tpr_at_fpr_with_sklearn(y, score, max_fpr, confidence_level=0.95):
    """What tpr_at_fpr computed before (scikit-learn's ROC, scipy.stats's beta)."""
    n_neg = int(np.sum(y == 0))
    n_pos = len(y) - n_neg
    allowed = int(np.floor(max_fpr * n_neg * (1 + 1e-9)))
    fpr, tpr, thresholds = roc_curve(y, score, drop_intermediate=False)
    fp = np.rint(fpr * n_neg).astype(np.int64)
    best = np.flatnonzero(fp <= allowed)[-1]
    k = int(np.rint(tpr[best] * n_pos))
    alpha = 1 - confidence_level
    low = 0.0 if k == 0 else float(stats.beta.ppf(alpha / 2, k, n_pos - k + 1))
    high = 1.0 if k == n_pos else float(stats.beta.ppf(1 - alpha / 2, k + 1, n_pos - k))
    min_fp = int(fp[fp > 0][0])
    return (k / n_pos, low, high, fp[best] / n_neg, float(thresholds[best]),
            min_fp <= allowed, min_fp / n_neg)


@pytest.mark.parametrize("kind", ["normal", "ties", "int", "float32", "bool"])
def test_roc_and_tpr_at_fpr_equal_scikit_learns(kind):
    rng = np.random.default_rng(0)
    for trial in range(20):
        n = int(rng.integers(20, 3000))
        y = (rng.random(n) < rng.uniform(0.1, 0.9)).astype(int)
        y[:2] = [0, 1]
        score = _scores(kind, n, rng) if trial % 2 else _scores(kind, n, rng) + y * (
            0 if kind == "bool" else 1)
        ours = attack_roc_curve(y, score)
        theirs = roc_curve(y, score, drop_intermediate=False)
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
            assert a.dtype == b.dtype
        for max_fpr in (0.001, 0.01, 0.1, 0.5, 1.0):
            if max_fpr * (n - y.sum()) < 1:
                continue
            result = tpr_at_fpr(y, score, max_fpr=max_fpr)
            assert (*result, result.resolved, result.min_fpr) == _tpr_at_fpr_with_sklearn(
                y, score, max_fpr)


def test_the_loo_gaussians_and_the_intervals_equal_scipy_stats():
    rng = np.random.default_rng(1)
    x, mean = rng.normal(size=(400, 3)) * 4, rng.normal(size=(400, 3))
    std = np.abs(rng.normal(size=(400, 3))) + 1e-30
    std[0, 0], std[1, 1] = np.nan, 1e-30  # a record with one model; a zero spread
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(_normal_logpdf(x, mean, std),
                                      stats.norm.logpdf(x, mean, std))
        np.testing.assert_array_equal(_normal_logpdf(x, mean, 0.7),
                                      stats.norm.logpdf(x, mean, 0.7))
    for n in (1, 7, 250, 1350):
        for k in sorted({0, 1, n // 3, n - 1, n}):
            alpha = 1.0 - 0.95
            expected = (0.0 if k == 0 else stats.beta.ppf(alpha / 2, k, n - k + 1),
                        1.0 if k == n else stats.beta.ppf(1 - alpha / 2, k + 1, n - k))
            assert _clopper_pearson(k, n, 0.95) == expected


@pytest.fixture(scope="module")
def audit_folder(tmp_path_factory):
    """An audit folder of two methods made from arrays (no training)."""
    rng = np.random.default_rng(0)
    n_records, n_models = 300, 8
    root = RunDirectory(tmp_path_factory.mktemp("audit") / "location" / "audit")
    root.write_json(AUDIT_FILES["plan"], document={"dataset": "location"})
    rows = []
    for method, leak in (("vanilla", 2.0), ("dpsgd", 0.3)):
        in_mask = np.zeros((n_records, n_models), dtype=bool)
        for row in in_mask:  # every record in half of the models
            row[rng.permutation(n_models)[:n_models // 2]] = True
        audit = DefenseAudit(
            phi=rng.normal(size=in_mask.shape) + leak * in_mask, in_mask=in_mask,
            is_canary=np.arange(n_records) < 100, record_index=np.arange(n_records),
            test_accuracy=np.full(n_models, 0.5), train_accuracy=np.full(n_models, 0.9),
            epsilon=np.full(n_models, np.nan), settings={"estimator": "X",
                                                         "dataset": "location"})
        audit.save(root.path(method, AUDIT_FILES["result"]))
        rows += method_rows(method, audit)
    table = pd.DataFrame(rows).reindex(columns=AUDIT_COLUMNS)
    root.write_json(AUDIT_FILES["table_json"], document={
        "rows": table.astype(object).where(table.notna(), None).to_dict("records")})
    root.mark_complete(document={})
    return root.root


def test_skmia_report_imports_no_scikit_learn_nor_scipy_stats(audit_folder):
    code = ("import sys, contextlib, io\n"
            "from skmia.cli import main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            f"    status = main(['report', {str(audit_folder)!r}])\n"
            "assert status in (0, None), status\n"
            "assert 'vanilla' in out.getvalue() and 'dpsgd' in out.getvalue()\n"
            "heavy = [m for m in ('torch', 'sklearn', 'scipy.stats', 'matplotlib')\n"
            "         if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
