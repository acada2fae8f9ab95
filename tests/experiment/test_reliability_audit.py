"""An audit directory trusts no round it finds: a round whose masks were flipped, that
belongs to another round or another audit, is refused naming its file, on resume and
on growth; and a refused call (other settings, other data) leaves the finished audit
byte for byte."""

import shutil

import numpy as np
import pytest

from skmia.experiment._audit_dir import AuditConfig, run_audit

# the smallest audit of the synthetic data whose every model sees every class
_CONFIG = {"dataset": "purchase-like", "methods": ("vanilla",), "models": 4,
           "canaries": 10, "records": 3000, "epochs": 1, "hidden": (4,), "verbose": 0}


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    out = tmp_path_factory.mktemp("audit")
    table = run_audit(AuditConfig(out=str(out), **_CONFIG))
    return out, table


@pytest.fixture
def audit(finished, tmp_path):
    """A copy of the finished audit: ``(out, folder of the method's rounds, table)``."""
    out, table = finished
    shutil.copytree(out, tmp_path / "out")
    rounds = tmp_path / "out" / "purchase-like" / "audit" / "seed1000" / "vanilla" / "rounds"
    return tmp_path / "out", rounds, table


def _snapshot(root):
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else None
            for p in sorted(root.rglob("*"))}


def _rewrite(path, change, *, keep_digest=True):
    """Rewrite the round file ``path`` with ``change(arrays)`` applied; its metadata kept
    (``keep_digest=False``: its arrays' digest recomputed, as a careful editor would)."""
    from safetensors import safe_open
    from safetensors.numpy import save

    from skmia.audit._defense_folder import arrays_sha256

    with safe_open(path, "np") as f:
        metadata = f.metadata() or {}
        arrays = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
    change(arrays)
    if not keep_digest:
        metadata["arrays_sha256"] = arrays_sha256(arrays)
    path.write_bytes(save(arrays, metadata=metadata))


def _flip(arrays):
    arrays["in_mask"] = (1 - arrays["in_mask"]).astype(np.uint8)


@pytest.mark.parametrize(("keep_digest", "why"), [
    (True, "its arrays do not match their digest"),
    (False, "its IN/OUT masks are not those the audit's seed gives"),
])
@pytest.mark.parametrize("models", [4, 6], ids=["resume", "grow"])
def test_a_flipped_round_is_refused_naming_its_file(audit, keep_digest, why, models):
    out, rounds, _ = audit
    _rewrite(rounds / "round_0001.safetensors", _flip, keep_digest=keep_digest)
    before = _snapshot(out)
    with pytest.raises(ValueError, match=f"round_0001.safetensors' is not round 1 of this "
                                         f"audit: {why}.*; delete it"):
        run_audit(AuditConfig(out=str(out), **{**_CONFIG, "models": models}))
    assert _snapshot(out) == before


def test_a_round_of_another_round_or_audit_is_refused_naming_its_file(audit):
    from safetensors.numpy import save

    out, rounds, table = audit
    shutil.copy(rounds / "round_0000.safetensors", rounds / "round_0001.safetensors")
    with pytest.raises(ValueError, match="round_0001.safetensors' is not round 1 of this "
                                         "audit: it is round '0', not round 1"):
        run_audit(AuditConfig(out=str(out), **_CONFIG))
    # another audit's round (other shapes, no fingerprint): main failed with a bare numpy
    # error naming no file
    other = {"phi": np.zeros((7, 2, 1)), "in_mask": np.ones((7, 2), np.uint8),
             **{k: np.zeros(2) for k in ("test_accuracy", "train_accuracy", "epsilon")}}
    (rounds / "round_0001.safetensors").write_bytes(save(other))
    with pytest.raises(ValueError, match="round_0001.safetensors' is not round 1 of this "
                                         "audit: it is not a round skmia wrote"):
        run_audit(AuditConfig(out=str(out), **_CONFIG))
    (rounds / "round_0001.safetensors").unlink()  # deleted, as the message says: redone
    again = run_audit(AuditConfig(out=str(out), **_CONFIG))
    assert again.drop(columns="note").equals(table.drop(columns="note"))


@pytest.mark.parametrize(("change", "match"), [
    ({"epochs": 2}, r"other method settings \(differing: params.max_epochs"),
    ({"hidden": (5,)}, r"other method settings \(differing: params.module__hidden_sizes"),
    ({"canaries": 12}, r"other data or canaries \(differing: canaries, plan.n_canaries"),
])
def test_a_refused_grow_leaves_the_finished_audit_byte_for_byte(audit, change, match):
    out, _, _ = audit
    before = _snapshot(out)
    with pytest.raises(ValueError, match=match):
        run_audit(AuditConfig(out=str(out), **{**_CONFIG, "models": 8, **change}))
    assert _snapshot(out) == before  # complete.json included: the report still reads it


def test_sigterm_during_an_audit_exits_143_keeping_nothing_unfinished(tmp_path, monkeypatch,
                                                                     capsys):
    import os
    import signal

    from skmia.cli import main
    from skmia.model_selection import _vectorized

    run_epoch, sent = _vectorized._run_epoch, []

    def terminated(*args):  # a real SIGTERM, in the middle of the first round's training
        if not sent:
            sent.append(1)
            os.kill(os.getpid(), signal.SIGTERM)
        return run_epoch(*args)

    monkeypatch.setattr(_vectorized, "_run_epoch", terminated)
    status = main(["audit", "--dataset", "purchase-like", "--methods", "vanilla", "--models",
                   "4", "--canaries", "10", "--records", "3000", "--epochs", "3", "--hidden",
                   "4", "-q", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert sent and status == 143, err  # main: 130, a Ctrl-C the batched bank swallowed
    assert "skmia audit: interrupted (SIGTERM)" in err
    assert not list(tmp_path.rglob("complete.json")) and not list(tmp_path.rglob("round_*"))
