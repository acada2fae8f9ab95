"""The HTML report of DP audits (``skmia audit-dp``): a header per audit, the table of
claimed vs lower-bound ε with the verdict, and the figure over the noise multipliers."""

import base64
import html
import json
import re
import shutil

import pytest

from skmia._rundir import DP_AUDIT_FILES
from skmia.cli import main
from skmia.experiment._dp_audit import DPAuditConfig, run_dp_audit
from skmia.report import html_report

HOSTILE = '<script>alert("x")</script>&'


@pytest.fixture(scope="module")
def audit_folder(tmp_path_factory):
    """A tiny white-box one-run audit of two noise multipliers (seconds)."""
    out = tmp_path_factory.mktemp("dp_html")
    table = run_dp_audit(DPAuditConfig(
        dataset="purchase-like", noise_multipliers=(2.0, 4.0), canaries=100,
        white_box=True, records=200, epochs=1, hidden=(8,), batch_size=50, out=str(out)))
    return out, table.attrs["folder"]


def _edited(audit_folder, tmp_path, edit):
    """A copy of the audit whose saved table's rows went through ``edit``."""
    out = tmp_path / "out"
    shutil.copytree(audit_folder[0], out)
    folder = out / "purchase-like" / "audit_dp" / "seed1000"
    path = folder / DP_AUDIT_FILES["table_json"]
    document = json.loads(path.read_text())
    edit(document["rows"])
    path.write_text(json.dumps(document))
    return out, folder


def _rows(page):
    table = page.split('<table class="dp-audit">', 1)[1].split("</table>", 1)[0]
    body = table.split("<tbody>", 1)[1]
    return [re.findall(r"<td[^>]*>(.*?)</td>", r) for r in re.findall(r"<tr>(.*?)</tr>", body)]


def test_page_of_only_dp_audits(audit_folder):
    out, folder = audit_folder
    page = html_report(out)
    assert "run(s)" not in page
    assert f"1 DP audit(s) below {out}" in page
    assert "<h3>DP-SGD audit on purchase-like</h3>" in page
    header = page.split("<h3>DP-SGD audit on purchase-like</h3>", 1)[1].split("<table", 1)[0]
    for words in (str(folder), "2 method(s), one_run, one_run_fdp", "one-run audit",
                  "white box: gradient canaries", "100 canaries",
                  "verdict at confidence 95 %"):
        assert words in header


def test_table_rows_and_verdicts(audit_folder, tmp_path):
    def violate(rows):  # the first sigma4 bound above its claim
        rows[2].update(epsilon=rows[2]["claimed_epsilon"] + 0.5, violated=True)

    out, _ = _edited(audit_folder, tmp_path, violate)
    rows = _rows(html_report(out))
    assert [(r[0], r[4]) for r in rows] == [("sigma2", "one_run"), ("sigma2", "one_run_fdp"),
                                            ("sigma4", "one_run"), ("sigma4", "one_run_fdp")]
    assert [r[-1] for r in rows] == ["holds", "holds", "claim violated at 95 %", "holds"]
    assert [r[1] for r in rows] == ["2.0000", "2.0000", "4.0000", "4.0000"]
    assert float(rows[0][2]) > float(rows[2][2]) > 0  # more noise, smaller claim


def test_figure_is_embedded(audit_folder):
    page = html_report(audit_folder[0])
    figure = re.search(r'<figure class="dp-audit"><img src="data:image/png;base64,([^"]+)"',
                       page)
    assert figure is not None
    assert base64.b64decode(figure.group(1)).startswith(b"\x89PNG\r\n\x1a\n")
    assert "this figure is not shown" not in page


def test_hostile_method_name_is_escaped(audit_folder, tmp_path):
    def rename(rows):
        for row in rows:
            if row["method"] == "one_run":
                row["method"] = HOSTILE

    out, _ = _edited(audit_folder, tmp_path, rename)
    page = html_report(out)
    assert "<script>" not in page
    assert html.escape(HOSTILE, quote=True) in page
    assert [r[4] for r in _rows(page)].count(html.escape(HOSTILE, quote=True)) == 2


def test_figure_that_cannot_be_drawn_says_why(audit_folder, tmp_path, capsys):
    def damage(rows):
        for row in rows:
            row["noise_multiplier"] = "loud"

    out, _ = _edited(audit_folder, tmp_path, damage)
    target = tmp_path / "page.html"
    assert main(["report", str(out), "--html", str(target)]) == 1
    page = target.read_text()
    assert ('<p class="missing">the DP audit&#x27;s plot cannot be drawn from its '
            "summary.json (ValueError(&quot;the DP audit table&#x27;s noise_multiplier "
            "column is missing or not numeric&quot;)): this figure is not shown") in page
    assert "this figure is not shown" in page
    assert "figure missing" in capsys.readouterr().err
    assert [r[-1] for r in _rows(page)] == ["holds"] * 4  # the table is still shown
