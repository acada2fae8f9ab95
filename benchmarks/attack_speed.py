"""Speed of skmia's attacks against the direct methods, with identical results asserted.

(a) Fitting the reference code's thresholds (per class, and one global) on 80,000
    shadow records: skmia's sort-based search against the reference's O(n^2) scan.
(b) White-box signals (gradient norms w.r.t. input and parameters) of the
    Purchase-shaped MLP (600 features, 100 classes, 1,317,348 parameters) for 10,000
    records: skmia's batched computation against a loop of one-record backward passes.

Prints a markdown table. Run from the repository root:

    python benchmarks/attack_speed.py            # the full sizes (a few minutes on 2 cores)
    python benchmarks/attack_speed.py --quick    # small sizes, seconds
"""

import argparse
import platform
import time

import numpy as np
import pandas as pd
import torch
from torch import nn

from skmia.attacks import WHITE_BOX_SIGNALS, LossAttack, compute_signals
from skmia.nn import MLP


# --------------------------------------------------------------------- direct methods
def reference_threshold(tr_values, te_values):
    """The reference code's threshold scan, O(n^2)."""
    thre, max_acc = 0, 0
    for value in np.concatenate((tr_values, te_values)):
        tr_ratio = np.sum(tr_values >= value) / (len(tr_values) + 0.0)
        te_ratio = np.sum(te_values < value) / (len(te_values) + 0.0)
        acc = 0.5 * (tr_ratio + te_ratio)
        if acc > max_acc:
            thre, max_acc = value, acc
    return thre


def reference_thresholds(scores, labels, membership, n_classes):
    """Per-class thresholds by the reference scan, members' rows before non-members'."""
    members, nonmembers = membership == 1, membership == 0
    return np.array(
        [
            reference_threshold(scores[members & (labels == c)], scores[nonmembers & (labels == c)])
            for c in range(n_classes)
        ]
    )


def per_record_norms(model, X, y):
    """One forward and one backward pass per record, as the reference code does."""
    model.eval()
    params = [p for p in model.parameters() if p.requires_grad]
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    out = np.empty((len(y), 4))
    for i in range(len(y)):
        x = X[i : i + 1].clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x), y[i : i + 1])
        grads = torch.autograd.grad(loss, [x, *params])
        gx = grads[0].reshape(-1)
        gw = torch.cat([g.reshape(-1) for g in grads[1:]])
        out[i] = [
            gx.abs().sum().item(),
            torch.linalg.vector_norm(gx).item(),
            gw.abs().sum().item(),
            torch.linalg.vector_norm(gw).item(),
        ]
    return out


def timed(fn, *args, repeat=1, **kwargs):
    """``(result, seconds)``: the best of ``repeat`` runs."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return result, best


# -------------------------------------------------------------------------- benches
def bench_thresholds(n_records, n_classes, rng):
    """Loss-attack thresholds on float32 losses with ties, members first."""
    membership = np.r_[np.ones(n_records // 2), np.zeros(n_records - n_records // 2)]
    membership = membership.astype(np.int64)
    labels = rng.integers(0, n_classes, n_records)
    loss = rng.exponential(np.where(membership == 1, 0.5, 1.0)).astype(np.float32)
    loss = np.round(loss, 3)  # ties, as float32 losses of confident models have
    signals = pd.DataFrame({"loss": loss, "label": labels})
    scores = -signals["loss"].to_numpy()

    # ours: LossAttack.fit, validation included, best of 3; the direct scans run once
    ours_pc, t_pc = timed(LossAttack(per_class=True).fit, signals, membership, repeat=3)
    ref_pc, t_ref_pc = timed(reference_thresholds, scores, labels, membership, n_classes)
    assert np.array_equal(ours_pc.class_thresholds_, ref_pc), "per-class thresholds differ"
    ours_gl, t_gl = timed(LossAttack(per_class=False).fit, signals, membership, repeat=3)
    ref_gl, t_ref_gl = timed(reference_threshold, scores[membership == 1], scores[membership == 0])
    assert ours_gl.threshold_ == ref_gl, "global thresholds differ"
    assert ours_pc.threshold_ == ref_gl, "the per-class fit's global threshold differs"
    return [
        # a per-class fit also finds the global threshold (for classes without both kinds)
        (f"per-class thresholds, {n_records:,} records, {n_classes} classes", t_pc, t_ref_pc),
        (f"global threshold, {n_records:,} records", t_gl, t_ref_gl),
        ("both (one per-class fit gives both)", t_pc, t_ref_pc + t_ref_gl),
    ]


def bench_white_box(n_records, rng):
    torch.manual_seed(0)
    model = MLP(600, 100)
    X = (rng.random((n_records, 600)) < 0.2).astype(np.float32)  # Purchase: binary features
    y = rng.integers(0, 100, n_records)
    signals, t_ours = timed(compute_signals, model, X, y, white_box=True, repeat=2)
    ref, t_ref = timed(per_record_norms, model, X, y)
    # the loop sums 1.3 million float32 squares per record, good to about 1e-5
    np.testing.assert_allclose(signals[list(WHITE_BOX_SIGNALS)].to_numpy(), ref, rtol=1e-4)
    label = f"white-box signals, {n_records:,} records, MLP 600-1024-512-256-128-100"
    return [(label, t_ours, t_ref)]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1: stable timings)"
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    n_thresholds, n_white_box = (8_000, 500) if args.quick else (80_000, 10_000)
    rng = np.random.default_rng(0)

    rows = bench_thresholds(n_thresholds, 100, rng) + bench_white_box(n_white_box, rng)
    print(
        f"<!-- {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} torch thread(s) -->"
    )
    print("| task | skmia (s) | direct (s) | speed-up |")
    print("|---|---:|---:|---:|")
    for label, t_ours, t_ref in rows:
        print(f"| {label} | {t_ours:.3f} | {t_ref:.2f} | {t_ref / t_ours:,.0f}x |")
    print("\nResults identical to the direct methods (asserted).")


if __name__ == "__main__":
    main()
