"""One table of FPRs (skmia._rundir.FPR_TABLE): every TPR column list is generated from it."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from skmia._rundir import FPR_TABLE, result_fprs, summary_fprs, tpr_column

ROOT = Path(__file__).resolve().parents[2]

# Every list that names a TPR column, as ``label -> expression`` evaluated after
# ``import skmia...``: the test below checks each against the table, here and in a process
# whose table holds one FPR more.
_LISTS = {
    "result columns": "list(skmia._rundir.RESULT_COLUMNS)",
    "attack table": "list(skmia._rundir.ATTACK_TABLE_COLUMNS)",
    "evaluate()": "list(skmia.attacks._base.EVALUATED_FPRS)",
    "audit rates": "list(skmia.audit._result.RATE_COLUMNS)",
    "audit summary": "list(skmia.audit._result.SUMMARY_COLUMNS)",
    "audit table": "list(skmia.audit._result.AUDIT_COLUMNS)",
    "model audit": "list(skmia.audit._model_result.MODEL_AUDIT_COLUMNS)",
    "report": "list(skmia.report.REPORT_COLUMNS)",
    "verdict": "['tpr_at_%sfpr' % f for f in skmia.report._verdict._FPRS]",
    "attack rows": "list(skmia.experiment._attack._rates(numpy.array([0, 1]), "
                   "numpy.array([0.0, 1.0])))",
}
_SCRIPT = """
import importlib.util, json, sys
import numpy
spec = importlib.util.spec_from_file_location("skmia._rundir._fprs", {path!r})
fprs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(fprs)
fprs.FPR_TABLE.update({extra})
sys.modules["skmia._rundir._fprs"] = fprs  # found there by skmia._rundir's import
import skmia._rundir, skmia.attacks._base, skmia.audit._result, skmia.audit._model_result
import skmia.report, skmia.report._verdict, skmia.experiment._attack
print(json.dumps({{label: eval(expr) for label, expr in {lists!r}.items()}}))
"""


def _lists(extra):
    script = _SCRIPT.format(path=str(ROOT / "skmia" / "_rundir" / "_fprs.py"),
                            extra=extra, lists=_LISTS)
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(script)], cwd=ROOT,
                         capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    return json.loads(out.stdout.splitlines()[-1])


def _expected(table):
    """What each list holds of the table's FPRs (their TPR columns, in order)."""
    every = [tpr_column(n) for n in table]
    summary = [tpr_column(n) for n, (_, s) in table.items() if s]
    return {"result columns": every, "model audit": every, "report": every,
            "attack rows": every, "attack table": summary, "evaluate()": summary,
            "audit rates": summary, "audit summary": summary, "audit table": summary,
            "verdict": summary}


def _tpr_columns(columns, prefix=""):
    """The TPR columns of ``columns`` named ``<prefix>tpr_at_<name>fpr`` (no bound), in
    order, without the prefix."""
    return [c[len(prefix):] for c in columns
            if c.startswith(prefix + "tpr_at_") and c.endswith("fpr")]


def test_the_table_holds_the_saved_fprs():
    # the saved result columns (tests/experiment/test_rundir.py pins the whole list)
    assert result_fprs() == {"0.01%": 1e-4, "0.1%": 1e-3, "1%": 1e-2}
    assert summary_fprs() == {"0.1%": 1e-3, "1%": 1e-2}
    assert tpr_column("0.1%") == "tpr_at_0.1%fpr"


def test_every_list_follows_the_table_with_one_fpr_more():
    """A new FPR in the table reaches every list: results, attack table, audit summary
    and table (canaries, population, per record), model audit, report, verdict."""
    # one more in the summaries too, one more in the results only
    extra = {"0.5%": (5e-3, True), "0.001%": (1e-5, False)}
    lists = _lists(extra)
    for label, expected in _expected({**FPR_TABLE, **extra}).items():
        prefix = "canary_" if label == "audit table" else ""
        assert _tpr_columns(lists[label], prefix) == expected, label
    new = tpr_column("0.5%")
    assert {new + "_low", new + "_high"} <= set(lists["result columns"])
    for part in ("canary", "population"):
        assert {f"{part}_{new}", f"{part}_{new}_low", f"{part}_record_{new}"} \
            <= set(lists["audit table"])
    assert "record_" + new in lists["audit summary"]


def test_every_list_follows_the_table_here():
    """The same in this process: each list holds the TPR columns the table gives."""
    import numpy

    import skmia.attacks._base  # noqa: F401  (names read by _LISTS' expressions)
    import skmia.audit._model_result
    import skmia.audit._result
    import skmia.experiment._attack
    import skmia.report._verdict

    here = {"skmia": skmia, "numpy": numpy}
    for label, expected in _expected(FPR_TABLE).items():
        prefix = "canary_" if label == "audit table" else ""
        found = eval(_LISTS[label], here)  # noqa: S307 (our own expressions)
        assert _tpr_columns(found, prefix) == expected, label
