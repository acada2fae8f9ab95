"""For the reference-model attacks' tests (tests/attacks/test_reference_attacks*.py): fixed
arrays of target scores, reference scores and IN masks, and the papers' algorithms
transcribed record by record (a loop over records in probabilities, not the library's
vectorised log-space code)."""

import numpy as np
import pandas as pd
from scipy.stats import norm

N_REF = 8


# ------------------------------------------------------------------ fixed arrays
def fixed_arrays(n, rng, *, n_ref=N_REF, n_in=N_REF // 2, member=None):
    """Target scores, reference scores and IN masks of moderate size (no pdf underflows).

    Each record has a difficulty level; OUT reference scores scatter around it, IN ones
    around level + 1.5 (with their own spread); the target's score is drawn like an IN
    score for ``member`` records and like an OUT score otherwise.
    """
    level = rng.uniform(-2.0, 3.0, n)
    spread_out = rng.uniform(0.5, 1.5, n)
    spread_in = rng.uniform(0.5, 1.5, n)
    inside = np.zeros((n, n_ref), dtype=bool)
    for i in range(n):
        inside[i, rng.choice(n_ref, n_in, replace=False)] = True
    noise = rng.standard_normal((n, n_ref))
    ref = level[:, None] + np.where(
        inside, 1.5 + spread_in[:, None] * noise, spread_out[:, None] * noise
    )
    member = rng.random(n) < 0.5 if member is None else member
    noise = rng.standard_normal(n)
    score = level + np.where(member, 1.5 + spread_in * noise, spread_out * noise)
    return score, ref, inside


def table(score, ref, inside, **extra):
    columns = {"score": score}
    for k in range(ref.shape[1]):
        columns[f"ref_score_{k}"] = ref[:, k]
    for k in range(ref.shape[1]):
        columns[f"ref_in_{k}"] = inside[:, k]
    columns.update(extra)
    return pd.DataFrame(columns)


# -------------------------------------------------- the papers, transcribed record by record
def audited_arrays():
    """60 audited records, every other one a member: score, ref, inside, membership."""
    rng = np.random.default_rng(0)
    member = np.arange(60) % 2 == 0
    score, ref, inside = fixed_arrays(60, rng, member=member)
    return score, ref, inside, member.astype(int)


def population_arrays():
    """80 population records, in no reference model: score, ref, inside."""
    rng = np.random.default_rng(1)
    score, ref, _ = fixed_arrays(80, rng, member=np.zeros(80, dtype=bool))
    return score, ref, np.zeros_like(ref, dtype=bool)  # in no reference model


def lira_online_paper(score, ref, inside):
    """Carlini et al., Algorithm 1 (online): Λ = p(s | N(μ_in, σ²_in)) / p(s | N(μ_out, σ²_out))."""
    ratios = []
    for s, r, m in zip(score, ref, inside, strict=True):
        confs_in, confs_out = list(r[m]), list(r[~m])
        mu_in, mu_out = np.mean(confs_in), np.mean(confs_out)
        var_in, var_out = np.var(confs_in), np.var(confs_out)
        ratios.append(
            norm.pdf(s, mu_in, np.sqrt(var_in)) / norm.pdf(s, mu_out, np.sqrt(var_out))
        )
    return np.array(ratios)


def lira_offline_paper(score, ref, inside, std_out=None):
    """Carlini et al., offline: Λ = 1 - Pr[Z > s], Z ~ N(μ_out, σ²_out)."""
    lam = []
    for s, r, m in zip(score, ref, inside, strict=True):
        confs_out = list(r[~m])
        sd = np.sqrt(np.var(confs_out)) if std_out is None else std_out
        lam.append(1 - norm.sf(s, np.mean(confs_out), sd))
    return np.array(lam)


def lira_offline_code_form(score, ref, inside):
    """The authors' code's offline statistic: minus the log-density under the OUT Gaussian."""
    out = []
    for s, r, m in zip(score, ref, inside, strict=True):
        confs_out = r[~m]
        out.append(-np.log(norm.pdf(s, np.mean(confs_out), np.std(confs_out))))
    return np.array(out)


def pooled_std(ref, inside):
    """One variance shared by every record's Gaussian: within-record squares over all."""
    squares, count = 0.0, 0
    for r, m in zip(ref, inside, strict=True):
        for v in r[m]:
            squares += (v - np.mean(r[m])) ** 2
            count += 1
    return np.sqrt(squares / count)


def lira_online_fixed_paper(score, ref, inside, std_in, std_out):
    ratios = []
    for s, r, m in zip(score, ref, inside, strict=True):
        ratios.append(norm.pdf(s, np.mean(r[m]), std_in) / norm.pdf(s, np.mean(r[~m]), std_out))
    return np.array(ratios)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def rmia_pr(ref_row, in_row, a):
    """Zarifzadeh et al.: Pr(x), averaged over all models (online) or from OUT ones (offline)."""
    if a is None:
        return np.mean([sigmoid(v) for v in ref_row])
    pr_out = np.mean([sigmoid(v) for v, m in zip(ref_row, in_row, strict=True) if not m])
    return 0.5 * ((1 + a) * pr_out + (1 - a))


def rmia_paper(x, z, gamma, a):
    """Score_MIA(x) = Pr_z( (Pr(x|θ)/Pr(x)) / (Pr(z|θ)/Pr(z)) >= γ )."""
    ratio_z = [sigmoid(s) / rmia_pr(r, m, a) for s, r, m in zip(*z, strict=True)]
    scores = []
    for s, r, m in zip(*x, strict=True):
        ratio_x = sigmoid(s) / rmia_pr(r, m, a)
        scores.append(np.mean([ratio_x / rz >= gamma for rz in ratio_z]))
    return np.array(scores)


def _loss(phi):
    return -np.log(sigmoid(phi))


def _attack_r_distribution(ref_row, in_row):
    """The authors' code: the OUT losses with the end points 0 and 1000 appended."""
    return np.append(np.append([_loss(v) for v, m in zip(ref_row, in_row, strict=True)
                                if not m], 0.0), 1000.0)


def attack_r_flags(score, ref, inside, alpha):
    """Ye et al., Attack-R as the authors' code decides: loss <= linear α-quantile."""
    return np.array([_loss(s) <= np.quantile(_attack_r_distribution(r, m), alpha,
                                             method="linear")
                     for s, r, m in zip(score, ref, inside, strict=True)])


def attack_r_paper(score, ref, inside):
    """1 - the smallest α at which the authors' rule flags the record (by bisection)."""
    levels = []
    for s, r, m in zip(score, ref, inside, strict=True):
        dist, target = _attack_r_distribution(r, m), _loss(s)
        low, high = 0.0, 1.0
        for _ in range(200):
            mid = 0.5 * (low + high)
            if np.quantile(dist, mid, method="linear") >= target:
                high = mid
            else:
                low = mid
        levels.append(high)
    return 1.0 - np.array(levels)
