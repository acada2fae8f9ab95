"""The false-positive rates skmia reports a TPR at: one table, every column name from it.

:data:`FPR_TABLE` is the only place an FPR is written. Every list of result or summary
columns that holds a TPR at some FPR is generated from it (through :func:`result_fprs`,
:func:`summary_fprs` and :func:`tpr_column`): a run's results and a model audit's
(:data:`skmia._rundir.RESULT_COLUMNS`), the attack table of
:func:`skmia.attacks.run_attacks` (:data:`skmia._rundir.ATTACK_TABLE_COLUMNS`,
``EVALUATED_FPRS``), a defense audit's summary and table
(:data:`skmia.audit._result.RATE_COLUMNS`) and its verdict. Adding a row here adds its
columns to all of them (``tests/cli/test_fprs.py`` checks it in a fresh process).

The functions read the table when they are called, so the lists are built at import
time from whatever the table holds then.
"""

__all__ = ["FPR_TABLE", "result_fprs", "summary_fprs", "tpr_column"]

#: ``name -> (false-positive rate, in the summaries)``, lowest rate first. The name is
#: the percent the column names carry (``tpr_at_<name>fpr``). A run's results (and a
#: model audit's) have a TPR column at every rate; the summaries (the attack table of
#: ``run_attacks``, a defense audit, its verdict) only at those marked True: 0.01 % needs
#: 10,000 non-members (or non-member pairs) to be measured at all.
FPR_TABLE = {
    "0.01%": (1e-4, False),
    "0.1%": (1e-3, True),
    "1%": (1e-2, True),
}


def result_fprs():
    """``name -> rate`` of every FPR of the table (a run's result columns)."""
    return {name: rate for name, (rate, _) in FPR_TABLE.items()}


def summary_fprs():
    """``name -> rate`` of the FPRs the summaries report (marked True in the table)."""
    return {name: rate for name, (rate, summary) in FPR_TABLE.items() if summary}


def tpr_column(name):
    """The column of the TPR at the FPR ``name``: ``tpr_at_<name>fpr``."""
    return f"tpr_at_{name}fpr"
