"""Reports of hostile folders: ``attack/scores.npz`` read within bounds (a zip bomb, a
header declaring 10^13 values, random bytes, pickled objects), names that a renderer
would interpret (matplotlib mathtext, markdown's ``|``, terminal escapes) shown as text,
and a ``summary.json`` holding a word where a number belongs refused naming the file."""

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from skmia._rundir import RESULT_COLUMNS, read_scores, scores_npz

ROOT = Path(__file__).resolve().parents[2]
_N_BOMB = 12_500_000  # records the bomb declares: 312 MB once decompressed, 0.3 MB zipped


def _npy_header(descr, shape):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _zip(members, compression=zipfile.ZIP_STORED):
    """An .npz of ``{name: (header, zero bytes that follow)}``, streamed (never held)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, (header, n_zeros) in members.items():
            with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
                member.write(header)
                chunk = bytes(2**20)
                for start in range(0, n_zeros, len(chunk)):
                    member.write(chunk[:min(len(chunk), n_zeros - start)])
    return buffer.getvalue()


def _bomb():
    names = np.asarray(["loss", "x"])
    return _zip({
        "names": (_npy_header(names.dtype.str, (2,)), names.nbytes),
        "scores": (_npy_header("<f8", (2, _N_BOMB)), 16 * _N_BOMB),
        "membership": (_npy_header("|i1", (_N_BOMB,)), _N_BOMB),
        "loss": (_npy_header("<f8", (_N_BOMB,)), 8 * _N_BOMB),
    }, zipfile.ZIP_DEFLATED)


def _declared():
    """10^13 values declared, 80 bytes there."""
    names = np.asarray(["loss"])
    return _zip({"names": (_npy_header(names.dtype.str, (1,)), names.nbytes),
                 "scores": (_npy_header("<f8", (1, 10**13)), 80),
                 "membership": (_npy_header("|i1", (10**13,)), 10),
                 "loss": (_npy_header("<f8", (10**13,)), 80)})


_CHILD = """
import json, resource, sys
from skmia._rundir import read_scores

out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        read_scores(data)
        out[path] = "read"
    except Exception as exc:  # noqa: BLE001 - the test reads what it was
        out[path] = f"{type(exc).__name__}: {exc}"
    out[path + ":growth_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
print(json.dumps(out))
"""


@pytest.mark.skipif(sys.platform != "linux", reason="ru_maxrss in KiB: Linux")
def test_a_zip_bomb_and_a_huge_declaration_are_refused_in_little_memory(tmp_path):
    bomb, declared = tmp_path / "bomb.npz", tmp_path / "declared.npz"
    bomb.write_bytes(_bomb())
    declared.write_bytes(_declared())
    assert bomb.stat().st_size < 2 * 2**20
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run([sys.executable, "-c", _CHILD, str(bomb), str(declared)],
                         capture_output=True, text=True, env=env, timeout=120, check=True)
    out = json.loads(run.stdout)
    assert out[str(bomb)].startswith("ValueError: scores.npz is not a scores file: "
                                     "scores.npy declares 200,000,128 bytes"), out
    assert "zip bomb" in out[str(bomb)]
    assert out[str(declared)].startswith("ValueError: scores.npz is not a scores file: "
                                         "scores.npy declares 10,000,000,000,000 values"), out
    # main decompressed the bomb (312 MB) and died of a MemoryError on the declaration
    for path in (bomb, declared):
        assert out[f"{path}:growth_kib"] < 32 * 1024, out


def test_the_folder_bounds_the_shapes_and_pickle_is_never_loaded():
    rng = np.random.default_rng(0)
    data = scores_npz({"loss": rng.random(6), "x": rng.random(6)}, [1, 0, 1, 0, 1, 0],
                      rng.random(6))
    scores, membership, _ = read_scores(data, n_records=6, names=["loss", "x"])
    assert list(scores) == ["loss", "x"] and membership.tolist() == [1, 0] * 3
    with pytest.raises(ValueError, match=r"scores.npy declares shape \(2, 6\), the folder "
                                         r"says \(\?, 7\)"):
        read_scores(data, n_records=7)
    with pytest.raises(ValueError, match="its attacks are not those of the folder's results"):
        read_scores(data, n_records=6, names=["x", "loss"])
    buffer = io.BytesIO()
    np.savez(buffer, names=np.asarray([{"a": 1}], dtype=object), scores=np.zeros((1, 2)),
             membership=np.zeros(2, np.int8), loss=np.zeros(2))
    with pytest.raises(ValueError, match="names.npy holds Python objects, which are never "
                                         r"loaded \(pickle\)"):
        read_scores(buffer.getvalue())


# ------------------------------------------------------------------ a model audit folder
_NAMES = ("$\\foo$", "a$b|c\x1b[2J")  # mathtext, an unbalanced $, a pipe, an escape


def _model_audit(folder):
    """A model audit's folder (what audit_model writes), with hostile attack names."""
    from sklearn.linear_model import LogisticRegression

    from skmia.audit._model_result import write_model_audit

    rng = np.random.default_rng(1)
    membership = np.r_[np.ones(20), np.zeros(20)].astype(int)
    rows = [{**dict.fromkeys(RESULT_COLUMNS), "dataset": "custom", "method": "m$\\x$",
             "seed": 0, "attack": name, "auc": 0.5 + 0.1 * k, "shadow_method": "none"}
            for k, name in enumerate(_NAMES)]
    table = pd.DataFrame(rows)
    settings = {"n_members": 20, "n_nonmembers": 20, "attacks": list(_NAMES)}
    write_model_audit(folder, table, {n: rng.random(40) for n in _NAMES}, membership,
                      rng.random(40), LogisticRegression(), settings, seconds=0.0)
    return folder


def test_names_reach_every_renderer_as_text(tmp_path, capsys):
    from skmia.cli import main
    from skmia.report import collect_results, format_table, html_report

    folder = _model_audit(tmp_path / "audit")
    page = html_report([folder])  # main: matplotlib's mathtext failed on the names
    assert page.count("<img") >= 2 and "this figure is not shown" not in page
    assert "a$b|c\\x1b[2J" in page and "\x1b" not in page
    text = format_table(collect_results([folder]))
    assert "a$b\\|c\\x1b[2J" in text and "\x1b" not in text
    assert all(line.count(" | ") == text.splitlines()[0].count(" | ")
               for line in text.splitlines()[:4] if line.startswith("| "))
    assert main(["report", str(folder), "--html", str(tmp_path / "r.html")]) == 0


@pytest.mark.parametrize(("damage", "why"), [
    (lambda: os.urandom(4096), "not a zip archive"),
    (lambda: _pickled(), "names.npy holds Python objects"),
])
def test_a_damaged_scores_file_is_said_on_the_page_and_in_the_status(tmp_path, capsys,
                                                                       damage, why):
    from skmia.cli import main
    from skmia.report import html_report

    folder = _model_audit(tmp_path / "audit")
    (folder / "attack" / "scores.npz").write_bytes(damage())
    page = html_report([folder])
    assert page.count("attack/scores.npz was refused (scores.npz is not a scores file: "
                      + why) == 2  # ROC curves and loss histograms: each says why
    assert main(["report", str(folder), "--html", str(tmp_path / "r.html")]) == 1
    err = capsys.readouterr().err
    assert "figure missing" in err and why in err


def _pickled():
    buffer = io.BytesIO()
    np.savez(buffer, names=np.asarray([object()], dtype=object), scores=np.zeros((1, 40)),
             membership=np.zeros(40, np.int8), loss=np.zeros(40))
    return buffer.getvalue()


# ------------------------------------------------------------------ defense audit tables
_AUDIT_ROW = {"method": "vanilla", "threat_model": "black-box", "n_models": 4,
              "attack": "lira", "test_accuracy": 0.5, "test_accuracy_std": 0.01, "note": "",
              **dict.fromkeys(["canary_tpr_at_0.1%fpr", "canary_tpr_at_0.1%fpr_low",
                               "canary_tpr_at_0.1%fpr_high", "canary_tpr_at_1%fpr",
                               "canary_tpr_at_1%fpr_low", "canary_tpr_at_1%fpr_high",
                               "population_tpr_at_0.1%fpr", "population_tpr_at_1%fpr",
                               "canary_auc", "population_auc", "empirical_epsilon",
                               "epsilon"], 0.1)}


def test_the_audit_table_escapes_terminal_codes_and_pipes():
    from skmia.report._audit import format_audit_table

    row = {**_AUDIT_ROW, "method": "van\x1b]0;pwned\x07illa|x", "attack": "lira\x1b[2J",
           "note": "n\x1bote"}
    text = format_audit_table(pd.DataFrame([row]))
    assert "\x1b" not in text and "\x07" not in text  # main printed them raw
    assert "van\\x1b]0;pwned\\x07illa\\|x" in text and "n\\x1bote" in text
    header, _, line = text.splitlines()[:3]
    assert line.count(" | ") == header.count(" | ")


def test_a_word_in_summary_json_is_refused_naming_the_file(tmp_path):
    from skmia.report._audit import find_audits

    folder = tmp_path / "location" / "audit" / "seed1000"
    folder.mkdir(parents=True)
    for name in ("audit.json", "complete.json"):
        (folder / name).write_text("{}")
    # the table is rebuilt from each method's arrays: summary.json only names the methods
    row = {**_AUDIT_ROW, "method": 5}
    (folder / "summary.json").write_text(json.dumps({"rows": [row]}))
    with pytest.raises(ValueError, match=r"summary.json': key 'rows.0.method' should "):
        find_audits([tmp_path])
