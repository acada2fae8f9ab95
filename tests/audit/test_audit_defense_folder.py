"""audit_defense(..., out=...) owns its folder: it writes, locks and resumes it, and a
call that would mix audits is refused before anything is written (issue 32)."""

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from skmia.audit import DefenseAudit, audit_defense, check_audit_folder, make_canaries

KWARGS = {"n_models": 8, "test_size": 50, "random_state": 3, "verbose": 0}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + 0.5 * rng.normal(size=300) > 0).astype(int)
    return X, y, make_canaries(X, y, 20, random_state=0)


@pytest.fixture(scope="module")
def direct(data):
    X, y, canaries = data
    return audit_defense(LogisticRegression(), X, y, canaries=canaries, **KWARGS)


def _files(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def _same(a, b):
    pd.testing.assert_frame_equal(a.summary_, b.summary_)
    np.testing.assert_array_equal(a.in_mask, b.in_mask)


def test_an_audit_in_a_folder_is_the_audit_and_is_saved_there(data, direct, tmp_path):
    X, y, canaries = data
    out = tmp_path / "audit"
    audit = audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out,
                          settings={"method": "plain"}, **KWARGS)
    _same(audit, direct)
    assert audit.settings["method"] == "plain"
    names = sorted(p.name for p in out.iterdir())
    assert names == ["complete.json", "recipe.json", "result", "rounds"]  # lock released
    assert len(list((out / "rounds").iterdir())) == 4  # 8 models, rounds of 2
    _same(DefenseAudit.load(out / "result"), direct)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit"]  # nothing beside it
    before = _files(out)
    _same(audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out,
                        settings={"method": "plain"}, **KWARGS), direct)  # reused
    assert _files(out)["rounds/round_0000.safetensors"] == before[
        "rounds/round_0000.safetensors"]


def test_an_interrupted_folder_continues_and_grows_to_the_same_result(data, direct,
                                                                     tmp_path, monkeypatch):
    from skmia.audit import _defense

    X, y, canaries = data
    out, real, calls = tmp_path / "audit", _defense.train_rounds, []

    def stop_after_two(*args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_defense, "train_rounds", stop_after_two)
    with pytest.raises(KeyboardInterrupt):
        audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out, **KWARGS)
    assert len(list((out / "rounds").iterdir())) == 2  # n_jobs=None: one round a save
    assert not (out / "complete.json").exists()  # visibly not finished
    monkeypatch.setattr(_defense, "train_rounds", real)
    _same(audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out, **KWARGS),
          direct)
    grown = audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out,
                          **{**KWARGS, "n_models": 12})
    _same(grown, audit_defense(LogisticRegression(), X, y, canaries=canaries,
                               **{**KWARGS, "n_models": 12}))


def test_a_folder_of_another_audit_is_refused_before_anything_is_written(data, tmp_path):
    X, y, canaries = data
    out = tmp_path / "audit"
    audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out,
                  **{**KWARGS, "n_models": 4})
    before = _files(out)
    with pytest.raises(ValueError, match=r"other method settings \(differing: params.C"):
        check_audit_folder(out, LogisticRegression(C=0.5), X, y, canaries=canaries,
                           n_models=8, test_size=50, random_state=3)
    with pytest.raises(ValueError, match=r"other method settings \(differing: params.C"):
        audit_defense(LogisticRegression(C=0.5), X, y, canaries=canaries, out=out, **KWARGS)
    with pytest.raises(ValueError, match=r"round_0000.safetensors' is not round 0 of this "
                                         r"audit: it belongs to another audit"):
        audit_defense(LogisticRegression(), X, y, canaries=canaries, out=out,
                      **{**KWARGS, "random_state": 4})
    assert _files(out) == before
    check_audit_folder(tmp_path / "new", LogisticRegression(), X, y, canaries=canaries,
                       n_models=8, test_size=50, random_state=3)
    assert not (tmp_path / "new").exists()  # a check writes nothing
