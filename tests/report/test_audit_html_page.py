"""The HTML page of a defense audit: a header that says what was audited and the
verdict, one labelled ROC per (method, threat model) row of the table, privacy-utility
points that do not hide one another, and DP ε above 10 marked vacuous. The audits are
made from arrays (no training), so the page's parts are checked in seconds."""

import re

import numpy as np
import pandas as pd
import pytest

from skmia._rundir import AUDIT_FILES, RunDirectory
from skmia.audit import DefenseAudit
from skmia.audit._result import DEFENDED, LABEL_ONLY, WHITE_BOX
from skmia.experiment._audit_dir import AUDIT_COLUMNS, method_rows
from skmia.report import html_report
from skmia.report._audit import audit_privacy_utility_figure
from skmia.report._audit_page import OFFSET_POINTS, point_offsets
from skmia.report._verdict import audit_verdict

N_RECORDS, N_CANARIES, N_MODELS = 500, 250, 8


def _audit(leak, *, releases=False, epsilon=np.nan, seed=0):
    """A DefenseAudit whose member pairs score ``leak`` higher (canaries twice as much)."""
    rng = np.random.default_rng(seed)
    in_mask = np.zeros((N_RECORDS, N_MODELS), dtype=bool)
    for i in range(N_RECORDS):
        in_mask[i, rng.permutation(N_MODELS)[:N_MODELS // 2]] = True
    is_canary = np.arange(N_RECORDS) < N_CANARIES
    shift = np.where(is_canary, 2 * leak, leak)[:, None]
    phi = rng.normal(size=in_mask.shape) + shift * in_mask
    extra = {}
    if releases:  # the raw network leaks more, the labels as much as vanilla
        extra = {"phi_raw": phi + 2 * in_mask,
                 "label_only": np.clip(0.5 + 0.2 * in_mask + 0.05 * rng.normal(
                     size=in_mask.shape), 0, 1)}
    return DefenseAudit(
        phi=phi, in_mask=in_mask, is_canary=is_canary, record_index=np.arange(N_RECORDS),
        test_accuracy=np.full(N_MODELS, 0.5 + 0.01 * seed),
        train_accuracy=np.full(N_MODELS, 0.9), epsilon=np.full(N_MODELS, epsilon),
        settings={"estimator": "X", "dataset": "location",
                  **({"label_only_queries": 32} if releases else {})}, **extra)


@pytest.fixture(scope="module")
def audit_folder(tmp_path_factory):
    audits = {"vanilla": _audit(3.0), "dpsgd": _audit(0.5, epsilon=250.0, seed=1),
              "hamp": _audit(1.0, releases=True, seed=2)}
    root = RunDirectory(tmp_path_factory.mktemp("audit") / "location" / "audit")
    root.write_json(AUDIT_FILES["plan"], document={"dataset": "location"})
    rows = [row for method, audit in audits.items() for row in method_rows(method, audit)]
    table = pd.DataFrame(rows).reindex(columns=AUDIT_COLUMNS)
    for method, audit in audits.items():
        audit.save(root.path(method, AUDIT_FILES["result"]))
    root.write_json(AUDIT_FILES["table_json"], document={
        "rows": table.astype(object).where(table.notna(), None).to_dict("records")})
    root.mark_complete(document={})
    return root.root, table, html_report([root.root])


def test_the_page_has_one_labelled_roc_per_method_and_threat_model(audit_folder):
    _, table, page = audit_folder
    assert len(table) == 5  # vanilla, dpsgd, hamp under three threat models
    rocs = re.findall(r'<figure class="audit-roc"><img [^>]*alt="ROC ([^"]*)"', page)
    assert len(rocs) == len(table)
    assert rocs == ["vanilla", "dpsgd", f"hamp, {DEFENDED}", f"hamp, {LABEL_ONLY}",
                    f"hamp, {WHITE_BOX}"]


def test_the_page_header_describes_the_audit_and_gives_the_verdict(audit_folder):
    _, table, page = audit_folder
    assert "0 run(s)" not in page
    header = page[page.index('<div class="audit-header">'):page.index("<h2>Defense audit")]
    assert "Defense audit on location" in header
    assert "3 method(s), vanilla, dpsgd, hamp; 5 (method, threat model) row(s)" in header
    assert f"8 models per method; {N_RECORDS} records in the pool, {N_CANARIES} of them " \
           "canaries" in header
    verdict = audit_verdict(table)
    assert header.count("<li>") == len(verdict) - 1
    assert "from its labels alone" in header and "DP ε 250, vacuous" in header
    # the table marks the DP ε too
    assert "<td>250 (vacuous)</td>" in page


def test_privacy_utility_points_do_not_hide_one_another(audit_folder):
    _, table, _ = audit_folder
    fig = audit_privacy_utility_figure(table)
    fig.canvas.draw()
    points = [line.get_transform().transform(np.column_stack(line.get_data()).astype(float))[0]
              for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert len(points) == len(table)
    box = fig.axes[0].get_window_extent()
    assert all(box.contains(*point) for point in points)  # each in view
    gaps = [np.hypot(*(a - b)) for i, a in enumerate(points) for b in points[i + 1:]]
    assert min(gaps) >= OFFSET_POINTS * fig.dpi / 72 * 0.99  # pixels: a marker's width


def test_point_offsets_spread_only_rows_that_would_overlap():
    assert point_offsets([0.5, 0.8, 0.5, 0.5]).tolist() == [-OFFSET_POINTS, 0.0, 0.0,
                                                            OFFSET_POINTS]
    assert point_offsets([0.5, 0.6, np.nan]).tolist() == [0.0, 0.0, 0.0]
