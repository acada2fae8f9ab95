"""audit_defense's leave-one-out LiRA against a loop transcription of the paper's algorithm."""

import numpy as np
import pytest
from scipy.stats import norm

from skmia.audit import loo_lira_scores


# ------------------------------------------------------------ the paper's algorithm
def loop_loo_lira(phi, in_mask, fix_variance, eps=1e-30):
    """Aerni et al.'s leave-one-out LiRA written as loops, record by record."""
    n, k_models, n_aug = phi.shape
    out = np.empty((n, k_models))
    for k in range(k_models):
        refs = [j for j in range(k_models) if j != k]
        if fix_variance:
            all_in = [phi[i, j, a] for i in range(n) for j in refs if in_mask[i, j]
                      for a in range(n_aug)]
            all_out = [phi[i, j, a] for i in range(n) for j in refs if not in_mask[i, j]
                       for a in range(n_aug)]
            g_in, g_out = np.std(all_in, ddof=1) + eps, np.std(all_out, ddof=1) + eps
        for i in range(n):
            total_in = total_out = 0.0
            for a in range(n_aug):
                s_in = [phi[i, j, a] for j in refs if in_mask[i, j]]
                s_out = [phi[i, j, a] for j in refs if not in_mask[i, j]]
                sd_in = g_in if fix_variance else np.std(s_in, ddof=1) + eps
                sd_out = g_out if fix_variance else np.std(s_out, ddof=1) + eps
                total_in += norm.logpdf(phi[i, k, a], np.mean(s_in), sd_in)
                total_out += norm.logpdf(phi[i, k, a], np.mean(s_out), sd_out)
            out[i, k] = (total_in - total_out) / n_aug
    return out


def _balanced(n, k_models, rng):
    mask = np.zeros((n, k_models), dtype=bool)
    for i in range(n):
        mask[i, rng.permutation(k_models)[: k_models // 2]] = True
    return mask


@pytest.mark.parametrize("n_aug", [1, 3])
@pytest.mark.parametrize("fix_variance", [False, True])
def test_loo_lira_equals_the_loop_transcription(n_aug, fix_variance):
    rng = np.random.default_rng(n_aug + 10 * fix_variance)
    n, k_models = 9, 8
    in_mask = _balanced(n, k_models, rng)
    phi = rng.normal(size=(n, k_models, n_aug)) + 2.0 * in_mask[:, :, None]
    expected = loop_loo_lira(phi, in_mask, fix_variance)
    got = loo_lira_scores(phi if n_aug > 1 else phi[:, :, 0], in_mask,
                          fix_variance=fix_variance)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


def test_loo_lira_is_nan_where_a_record_has_one_in_reference():
    rng = np.random.default_rng(0)
    in_mask = _balanced(5, 4, rng)
    scores = loo_lira_scores(rng.normal(size=(5, 4)), in_mask, fix_variance=False)
    assert np.isnan(scores[in_mask]).all()  # 1 IN reference left: no ddof=1 variance
    fixed = loo_lira_scores(rng.normal(size=(5, 4)), in_mask, fix_variance=True)
    assert np.isfinite(fixed).all()
