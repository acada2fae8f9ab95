"""`skmia report --html`: one self-contained page, checked by parsing it (not by eye)."""

import base64
import html.parser
import math
import re
import shutil

import pandas as pd
import pytest

from skmia.cli import main
from skmia.report import html_report, privacy_utility_figure, training_curves_figure

METHODS = ("vanilla", "relaxloss")
# the page rounds to 4 decimals
TOLERANCE = 5e-5 + 1e-12


class _Page(html.parser.HTMLParser):
    """Tables (class, attributes, header, rows of cell text), images and links of a page."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.tables, self.images, self.links, self.sections = [], [], [], []
        self._table = self._row = self._cell = None
        self.text = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = {"attrs": attrs, "header": [], "rows": []}
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(attrs)
        elif tag == "section":
            self.sections.append(attrs)
        for name in ("src", "href"):
            if name in attrs:
                self.links.append(attrs[name])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(("".join(self._cell).strip(), tag))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if all(kind == "th" for _, kind in self._row) and not self._table["header"]:
                self._table["header"] = [text for text, _ in self._row]
            else:
                self._table["rows"].append([text for text, _ in self._row])
            self._row = None
        elif tag == "table" and self._table is not None:
            self.tables.append(self._table)
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def of_class(self, name):
        return [t for t in self.tables if name in t["attrs"].get("class", "").split()]

    def figures(self, caption_word):
        return [i for i in self.images if caption_word in i.get("alt", "")]


def _parse(text):
    page = _Page()
    page.feed(text)
    page.close()
    return page


@pytest.fixture(scope="module")
def runs(location_data_home, tmp_path_factory):
    """Two tiny real runs on Location30 (vanilla and relaxloss), attacked."""
    out = tmp_path_factory.mktemp("runs")
    for method in METHODS:
        status = main(["run", "--dataset", "location", "--method", method, "--mode",
                       "defense_attack", "--epochs", "2", "--no-white-box", "-q", "--out",
                       str(out), "--data-home", str(location_data_home)])
        assert status == 0
    return out


@pytest.fixture(scope="module")
def report_text(runs, tmp_path_factory):
    report = tmp_path_factory.mktemp("report") / "report.html"
    assert main(["report", str(runs), "--html", str(report)]) == 0
    return report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def page(report_text):
    return _parse(report_text)


def _run_dirs(root):
    return sorted(p.parent for p in root.rglob("params.json") if p.parent.name != "shadow")


def _number(text):
    return math.nan if text in ("", "\N{EM DASH}") else float(text)


def test_one_settings_table_per_run(runs, page):
    folders = _run_dirs(runs)
    assert len(folders) == len(METHODS)
    settings = page.of_class("settings")
    assert sorted(t["attrs"]["data-run"] for t in settings) == [str(f) for f in folders]
    for table in settings:
        values = dict(table["rows"])
        folder = table["attrs"]["data-run"]
        assert values["dataset"] == "location"
        assert values["method"] == folder.split("/")[-2]
        assert values["seed"] == "1000"
        assert values["partition"] == "target"
        assert values["epochs trained"] == "2"
    # every estimator parameter of params.json, in a details element
    details = page.of_class("estimator-params")
    assert len(details) == len(METHODS)
    relaxloss = next(t for t in details if "/relaxloss/" in t["attrs"]["data-run"])
    assert dict(relaxloss["rows"])["alpha"] == "1.0"


def test_results_tables_equal_results_csv(runs, page):
    results = page.of_class("results")
    assert len(results) == len(METHODS)
    for table in results:
        csv = pd.read_csv(f"{table['attrs']['data-run']}/attack/results.csv",
                          keep_default_na=False, na_values=[""])
        assert len(table["rows"]) == len(csv)
        shown = table["header"]
        assert shown[0] == "attack"
        # every column with a value is shown, but the run's context (in its settings)
        # and the bounds of the intervals (in their rate's cell)
        expected = [c for c in csv.columns if csv[c].notna().any() and c not in
                    ("dataset", "model", "method", "seed", "shadow_method")
                    and not c.endswith(("_low", "_high"))]
        assert shown == expected
        assert "tpr_at_1%fpr" in shown
        n_intervals = 0
        for row, (_, record) in zip(table["rows"], csv.iterrows(), strict=True):
            cells = dict(zip(shown, row, strict=True))
            assert cells["attack"] == record["attack"]
            for column in shown[1:]:
                text = cells[column]
                interval = re.fullmatch(r"(\S+) \[(\S+), (\S+)\]", text)
                if interval:  # a rate with its 95 % Clopper-Pearson interval
                    assert column.startswith("tpr_at_")
                    text = interval[1]
                    low, high = float(interval[2]), float(interval[3])
                    assert abs(low - record[column + "_low"]) <= TOLERANCE
                    assert abs(high - record[column + "_high"]) <= TOLERANCE
                    assert low <= float(text) <= high
                    n_intervals += 1
                value, want = _number(text), float(record[column])
                assert math.isnan(value) == math.isnan(want), column
                if not math.isnan(want):
                    assert abs(value - want) <= TOLERANCE, (column, value, want)
        assert n_intervals > 0


def test_images_are_embedded_pngs(page):
    assert page.images
    for image in page.images:
        src = image["src"]
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1], validate=True).startswith(b"\x89PNG")
    # per run: the ROC curves (with the band), the loss histograms, the training curves
    for caption in ("ROC curves of", "loss histograms of", "training curves of"):
        assert len(page.figures(caption)) == len(METHODS), caption
    # two methods: the privacy-utility plot and its points
    assert len(page.figures("privacy-utility")) == 1
    points = page.of_class("privacy-utility")
    assert len(points) == 1 and sorted(r[0] for r in points[0]["rows"]) == sorted(METHODS)


def test_page_is_self_contained(page, report_text):
    assert page.links
    for link in page.links:
        if link.startswith("data:image/png;base64,"):
            continue  # base64 may spell "http"; the test above decodes every image
        assert link.startswith("#") and "http" not in link.lower(), link
    # nothing to fetch anywhere else either: no stylesheet, script, font or URL
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]*", "", report_text).lower()
    for needle in ("http:", "https:", "//", "<script", "<link", "@import", "url("):
        assert needle not in text, needle
    assert len(page.of_class("runs")) == 1 and len(page.of_class("runs")[0]["rows"]) == 2


def test_run_without_attack_is_listed(runs, tmp_path):
    source = runs / "location" / "vanilla" / "seed1000"
    copy = tmp_path / "copy" / "seed1000"
    shutil.copytree(source, copy)
    shutil.rmtree(copy / "attack")
    page = _parse(html_report(tmp_path / "copy"))
    assert len(page.of_class("settings")) == 1
    assert page.of_class("results") == []
    assert "not attacked" in "".join(page.text)
    assert len(page.figures("training curves of")) == 1
    assert page.figures("ROC curves of") == [] and page.figures("privacy-utility") == []


def test_text_is_escaped(runs, tmp_path):
    source = runs / "location" / "vanilla" / "seed1000"
    copy = tmp_path / "copy"
    shutil.copytree(source, copy)
    params = (copy / "params.json").read_text()
    (copy / "params.json").write_text(params.replace('"lr": "0.1"', '"lr": "<b>&x</b>"'))
    text = html_report(copy)
    assert "<b>&x</b>" not in text and "&lt;b&gt;&amp;x&lt;/b&gt;" in text


def test_folder_without_runs_fails_clearly(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty"), "--html", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("skmia report: error: no run directories")
    assert str(tmp_path / "empty") in err and "Traceback" not in err
    assert not (tmp_path / "r.html").exists()
    assert main(["report", str(tmp_path / "missing"), "--html", str(tmp_path / "r.html")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_figure_functions_refuse_what_they_cannot_draw():
    with pytest.raises(ValueError, match="auc"):
        privacy_utility_figure(pd.DataFrame({"method": ["vanilla"], "test_accuracy": [0.5]}))
    with pytest.raises(ValueError, match="no loss"):
        training_curves_figure([{"epoch": 1, "dur": 0.1}])
