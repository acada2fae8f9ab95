"""DP-SGD's side of the vectorised bank: what :class:`DPSGDClassifier` declares so that
:mod:`skmia.model_selection._vectorized_dp` trains its clones as one batched network.

The bank sets each clone up as its ``fit`` would (:meth:`_batched_private`), steps its
accountant as its steps are taken (:meth:`_batched_private_steps`; the ``privacy``
callback records ε at each epoch's end, which the bank fires as ``fit`` does) and, once
per bank, warns about a guarantee too weak to mean anything (:meth:`_batched_finish`).
"""

import warnings

from ._dp_accounting import WeakPrivacyWarning

__all__ = []


class _BatchedPrivacy:
    """The batched bank's hooks of :class:`DPSGDClassifier` (a mixin)."""

    def _batch_refusal(self, X, fit_params):
        """Why the batched bank cannot train this recipe, or None: the base class's
        reasons, then DP-SGD's own."""
        reasons = []
        if self.grad_sample_mode not in ("auto", "ghost"):
            reasons.append(f"grad_sample_mode={self.grad_sample_mode!r} asks for opacus' "
                           "per-record gradients (the batched bank clips by ghost norms: "
                           "'auto' or 'ghost')")
        if getattr(self, "_gradient_canaries", None) is not None:
            # a white-box audit's canaries ride on the model-by-model private step
            reasons.append("gradient canaries are inserted in its step (a white-box DP "
                           "audit)")
        return super()._batch_refusal(X, fit_params) or self._refusal(reasons)

    def _batched_private(self, n_rows):
        """Set this prepared clone up for ``n_rows`` training rows as ``fit`` does
        (sample rate, the noise multiplier a ``target_epsilon`` asks for) and return
        the settings of its private step."""
        # the private step's settings, which the batched engine defines and reads
        from ..model_selection._vectorized_dp import PrivateSettings

        self._settle_sampling(n_rows)
        max_grad_norm = float(self.max_grad_norm)
        return PrivateSettings(
            sample_rate=self.sample_rate_,
            steps_per_epoch=self._steps_per_epoch(n_rows),
            max_grad_norm=max_grad_norm,
            noise_std=self.noise_multiplier_ * max_grad_norm,  # opacus' σ · C
            expected_batch_size=self.sample_rate_ * n_rows,
        )

    def _batched_private_steps(self, n_steps):
        """Account ``n_steps`` noisy steps, as ``train_step`` accounts each."""
        for _ in range(n_steps):
            self.accountant_.step(noise_multiplier=self.noise_multiplier_,
                                  sample_rate=self.sample_rate_)
        self.n_steps_ += n_steps

    def _batched_finish(self, models):
        """End a bank of ``models`` as ``fit`` ends each (ε at the end), with its
        :class:`WeakPrivacyWarning` once for the bank: each kind of weakness that some
        model has, said of the model where it is worst."""
        if not models:
            return
        for model in models:
            model._update_epsilon()
        worst = {}
        for model in models:
            for kind, (badness, message) in model._weak_privacy().items():
                if kind not in worst or badness > worst[kind][0]:
                    worst[kind] = (badness, message)
        for kind in sorted(worst):
            share = sum(kind in m._weak_privacy() for m in models)
            warnings.warn(f"{share} of the {len(models)} models of the bank, the worst: "
                          f"{worst[kind][1]}", WeakPrivacyWarning, stacklevel=3)
