"""How tight and how safe skmia's ε lower bounds are, on mechanisms of known privacy.

Three tables for ``docs/epsilon_bounds.rst``, from :func:`skmia.metrics.epsilon_lower_bound`
and :func:`skmia.metrics.max_epsilon_lower_bound` (δ = 1e-5, 95 % confidence):

1. **Tightness**: Gaussian scores, N(μ, 1) for members against N(0, 1) (exactly μ-GDP;
   true ε from the GDP formula), μ = 1 and 2. Two-group methods get 1,000 members and
   1,000 non-members; one-run methods 2,000 canaries, each in by a fair coin, scored
   N(μ·b, 1). The median bound over ``--draws`` seeded draws, for each method and threshold
   rule (a fixed threshold at μ/2, Bonferroni, split).
2. **Safety**: how often each bound exceeds the true ε over 200 draws of the 1-GDP
   mechanism above (jax_privacy's GDP estimate did in 24 of 200, issue 28); a valid
   95 % bound may in about 10 (5 %), at most 21 (the 99.9 % binomial quantile).
3. **Counts**: the largest bound a number of records (or canaries) can show at all,
   a perfect attack (``max_epsilon_lower_bound``), Bonferroni rule; and, the other way
   round, the fewest records (of 20, 50, 100, 200, 500, 1,000, ..., 50,000) whose
   perfect attack shows ε = 1, 2, 4, 8.

Usage (about 3 minutes on 2 shared CPU cores)::

    python benchmarks/epsilon_bounds.py            # --draws 50 (table 1), 200 (table 2)
    python benchmarks/epsilon_bounds.py --quick    # 10 / 40 draws, seconds
"""

import argparse
import time

import numpy as np
from scipy.stats import binom

from skmia.metrics import epsilon_lower_bound, max_epsilon_lower_bound
from skmia.metrics._epsilon import gdp_epsilon

METHODS = ("clopper_pearson", "gdp", "one_run", "one_run_fdp")
DELTA = 1e-5


def draw(method, mu, n, rng):
    """Membership and scores of one draw: two groups of n, or 2n canaries by fair coins."""
    if method.startswith("one_run"):
        member = rng.random(2 * n) < 0.5
    else:
        member = np.r_[np.ones(n, dtype=bool), np.zeros(n, dtype=bool)]
    return member, rng.normal(size=2 * n) + mu * member


def bounds(method, rule, mu, n, draws, seed):
    rng = np.random.default_rng(seed)
    threshold = mu / 2 if rule == "fixed" else rule
    values = []
    for d in range(draws):
        member, score = draw(method, mu, n, rng)
        values.append(epsilon_lower_bound(member, score, method=method, threshold=threshold,
                                          random_state=d).epsilon)
    return np.array(values)


def tightness(draws):
    print(f"Median ε lower bound over {draws} draws, Gaussian scores, 1,000 + 1,000 records "
          "(2,000 canaries for one-run methods), δ = 1e-5, 95 %\n")
    rows = []
    for mu in (1.0, 2.0):
        for method in METHODS:
            cells = [f"{np.median(bounds(method, rule, mu, 1000, draws, 7)):.2f}"
                     for rule in ("fixed", "bonferroni", "split")]
            rows.append([f"{mu:g}", f"{gdp_epsilon(mu, DELTA):.2f}", method, *cells])
    table(["μ", "true ε", "method", "fixed t = μ/2", "bonferroni", "split"], rows)


def safety(draws):
    limit = int(binom.ppf(0.999, draws, 0.05))
    true_eps = gdp_epsilon(1.0, DELTA)
    print(f"\nDraws (of {draws}) whose 95 % bound exceeds the true ε = {true_eps:.2f} of "
          f"1-GDP, 1,000 + 1,000 records; a valid bound: about {0.05 * draws:.0f}, "
          f"at most {limit}\n")
    rows = []
    for method in METHODS:
        cells = []
        for rule in ("fixed", "bonferroni", "split"):
            values = bounds(method, rule, 1.0, 1000, draws, 11)
            cells.append(f"{int(np.sum(values > true_eps))} (max {values.max():.2f})")
        rows.append([method, *cells])
    table(["method", "fixed t = 0.5", "bonferroni", "split"], rows)


def counts():
    sizes = (100, 250, 500, 1000, 2500, 5000, 10000)
    print("\nLargest ε lower bound a perfect attack can show (max_epsilon_lower_bound), "
          "n records or canaries, half members, Bonferroni, δ = 1e-5, 95 %\n")
    rows = [[method, *[f"{max_epsilon_lower_bound(n // 2, n - n // 2, method=method):.2f}"
                       for n in sizes]] for method in METHODS]
    table(["method", *[f"n = {n:,}" for n in sizes]], rows)
    grid = (20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000)
    targets = (1.0, 2.0, 4.0, 8.0)
    print("\nFewest records or canaries (half members) whose perfect attack shows ε, "
          "Bonferroni, δ = 1e-5, 95 %\n")
    rows = []
    for method in METHODS:
        shown = [max_epsilon_lower_bound(n // 2, n - n // 2, method=method) for n in grid]
        cells = []
        for target in targets:
            enough = [n for n, value in zip(grid, shown, strict=True) if value >= target]
            cells.append(f"{enough[0]:,}" if enough else f"> {grid[-1]:,}")
        rows.append([method, *cells])
    table(["method", *[f"ε = {t:g}" for t in targets]], rows)


def table(header, rows):
    """An RST simple table."""
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    rule = "  ".join("=" * w for w in widths)
    print(rule)
    print("  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)))
    print(rule)
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)))
    print(rule)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 / 40 draws")
    args = parser.parse_args(argv)
    start = time.time()
    tightness(10 if args.quick else 50)
    safety(40 if args.quick else 200)
    counts()
    print(f"\n{time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
