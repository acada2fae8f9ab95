"""DP-SGD (Abadi et al., 2016) through opacus, with privacy accounting."""

import copy
import math
import secrets
import warnings
from functools import partial
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from opacus.accountants import create_accountant
from opacus.validators import ModuleValidator
from opacus.validators.errors import UnsupportedModuleError
from skorch.dataset import unpack_data
from skorch.utils import TeeGenerator

from .._rundir import Int, ListOf, OneOf, Opt, check_json
from .._sklearn_compat import Interval, StrOptions
from ..nn import MLP
from ._base import CROSS_ENTROPY, MIADefenseClassifier, in_memory_arrays, insert_callback
from ._batches import _PoissonBatches
from ._callbacks import _PrivacyLog
from ._dp_accounting import (
    _ACCOUNTANTS,
    MEANINGFUL_EPSILON,
    WeakPrivacyWarning,
    privacy_epsilon,
)
from ._dp_batched import _BatchedPrivacy
from ._dp_clipping import (
    _batchnorm1d_to_groupnorm,
    _IncompleteNorms,
    _PrivateTraining,
    _quiet_backward_hooks,
)
from ._dp_prv import noise_for_epsilon

__all__ = ["DPSGDClassifier", "WeakPrivacyWarning"]

_GRAD_SAMPLE_MODES = ("auto", "ghost", "hooks", "functorch")


def fresh_seed():
    """A seed from the operating system's entropy (``secrets``), which nothing saved
    can reproduce."""
    return secrets.randbelow(np.iinfo(np.int32).max)


class DPSGDClassifier(_BatchedPrivacy, MIADefenseClassifier):
    """DP-SGD: per-record gradient clipping and Gaussian noise, with accounted (ε, δ).

    Each step draws a Poisson sample of the training rows (each row independently, with
    probability ``q = batch_size / n``), clips every record's gradient to L2 norm
    ``max_grad_norm``, adds Gaussian noise of standard deviation
    ``noise_multiplier * max_grad_norm`` to their sum and divides by ``batch_size``
    (the expected batch size); SGD (momentum, weight decay) then takes the step. A
    privacy accountant turns (noise, ``q``, steps, ``delta``) into the ε of an
    (ε, δ)-differential-privacy guarantee for every training row.

    Built on opacus (``ModuleValidator``, per-sample gradient hooks, ``DPOptimizer``,
    accountants) through skorch's hooks: the module is fixed for DP (BatchNorm becomes
    GroupNorm), the training iterator samples Poisson batches, ``train_step`` takes the
    private step, and a callback records ε after each epoch.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The network; see :class:`MIADefenseClassifier`. Layers opacus cannot train
        privately are replaced by ``opacus.validators.ModuleValidator.fix``: BatchNorm
        becomes GroupNorm (``BatchNorm2d``/``3d``: opacus' ``gcd(32, C)`` groups;
        ``BatchNorm1d``: one group, i.e. a LayerNorm over the features, since one
        feature per group would normalise an MLP's activations to zero). A network
        that still is not valid raises ValueError.
    noise_multiplier : float, default=0.01
        Noise standard deviation relative to ``max_grad_norm``. 0.01 is the reference
        code's value, chosen for utility: it gives no meaningful guarantee (over the
        paper's 120 epochs, ε ≈ 7e7 on Texas100 and 2e8 on Purchase100 at δ = 1e-5; 1.5e8
        for CIFAR's 300) and a :class:`WeakPrivacyWarning` says so.
        Ignored when ``target_epsilon`` is set.
    max_grad_norm : float, default=1.0
        Per-record clipping bound ``C`` (the reference: 1.0 for Texas100 / Purchase100,
        1.2 for CIFAR).
    delta : float, default=1e-5
        The δ of the guarantee: the probability mass on which the ε bound may fail.
        Choose it well below ``1 / n`` for ``n`` training rows (1e-5 is below that for
        every dataset of the paper); δ ≥ ``1 / n`` raises a :class:`WeakPrivacyWarning`.
    target_epsilon : float or None, default=None
        When set, the noise multiplier is chosen (with opacus'
        ``get_noise_multiplier``) so that ``fit`` ends at an ε just below
        ``target_epsilon`` after ``max_epochs`` epochs.
    accountant : {"prv", "rdp"}, default="prv"
        The privacy accountant: PRV (Gopi et al., 2021; the tighter) or RDP
        (Mironov, 2017; what the reference's opacus used).
    grad_sample_mode : {"auto", "ghost", "hooks", "functorch"}, default="auto"
        How per-record gradient norms are obtained. ``"ghost"``: ghost clipping, which
        computes per-record norms without materialising per-record gradients (two
        backward passes, the first only down to each layer's outputs; on the paper's
        MLPs some 30 times faster than ``"hooks"``, see ``benchmarks/dp_speed.py``).
        ``"hooks"`` / ``"functorch"``: opacus' per-record gradients. ``"auto"`` uses
        ghost clipping and falls back to ``"hooks"`` when the network does not allow it
        (e.g. tied parameters).
    secure_noise : bool, default=False
        Seed the noise and the Poisson batches from the operating system's entropy
        instead of ``random_state`` (which then seeds the initial weights only), so that
        nothing a user keeps — ``random_state``, a run folder's name — can replay the
        noise. Fits are then not reproducible, by design. ``skmia run`` sets it for
        every DP-SGD run.
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier` (``max_epochs``,
        ``batch_size`` -- the expected Poisson batch size --, ``lr``, ``milestones``,
        ``random_state``, ``module__*``, ...).

    Attributes
    ----------
    epsilon_ : float
        ε spent so far at ``delta_`` (``inf`` without noise).
    delta_ : float
        The δ of the guarantee.
    noise_multiplier_ : float
        The noise multiplier used (``noise_multiplier``, or the one chosen for
        ``target_epsilon``), fixed by ``fit``; ``partial_fit`` continues with it.
    sample_rate_ : float
        Poisson sampling rate ``batch_size / n`` of the last training call.
    n_steps_ : int
        Noisy steps taken since ``fit`` (``partial_fit`` adds to them).
    accountant_ : opacus accountant
        The accountant of the steps taken; its ``history`` lists
        ``(noise_multiplier, sample_rate, steps)``.
    grad_sample_mode_ : str
        The per-record gradient mode used.
    history : skorch.callbacks.History
        Also holds ``epsilon``, the ε spent after each epoch.

    Notes
    -----
    Threat model: differential privacy bounds what *any* adversary -- who may see the
    final weights (white box) and know every other training row -- can learn about
    the presence of one row: a membership test has ``TPR <= e^ε FPR + δ``.
    The guarantee covers the rows trained on under the accountant's assumptions:
    Poisson sampling (used here; steps per epoch ``ceil(n / batch_size)``), every
    noisy step released. ``partial_fit`` continues the accountant; ``fit`` restarts it
    with the weights (with ``warm_start=True`` it keeps both). Noise is drawn from
    torch's generator (seeded by ``random_state``), not a cryptographically secure one,
    which is enough for experiments, not for a deployment.

    The seed of the noise and of the Poisson batches is kept in memory only:
    :func:`skmia.experiment.save_estimator` never writes it, since whoever could replay
    the noise would void ε. A model loaded with
    :func:`~skmia.experiment.load_estimator` predicts as saved and draws a fresh seed
    from the operating system, so its ``partial_fit`` adds new noise (and the same ε)
    rather than repeating the steps an in-memory ``partial_fit`` would have taken. An
    int ``random_state`` makes that seed reproducible, hence derivable by whoever knows
    it: set ``secure_noise=True`` (or leave ``random_state`` None) for a model whose
    guarantee is meant to hold.

    Differences from the reference code (opacus 0.x): Poisson sampling instead of
    shuffled fixed-size batches, PRV accounting by default, ghost clipping.

    Utility of the defaults: clipping every record's gradient at norm 1 costs accuracy
    even at the reference's σ = 0.01 (which buys no guarantee), and more so the fewer
    the rows and the epochs. On 1,000 members of synthetic purchase-like data
    (``make_purchase_like``), 30 epochs, one hidden layer of 256, the defaults end 30
    points below an undefended network (0.589 against 0.889); on 1,002 members of
    Location30, 6 points below (``benchmarks/defense_defaults.py --recipes small``,
    benchmarks/docs/defense_defaults.md). The class cannot tell at fit time what an undefended
    network
    would reach, so it does not warn about accuracy; compare with
    :class:`~skmia.defenses.VanillaClassifier` on held-out rows, or raise
    ``max_grad_norm`` / train longer.

    References
    ----------
    .. [1] M. Abadi, A. Chu, I. Goodfellow, H. B. McMahan, I. Mironov, K. Talwar,
       L. Zhang. "Deep Learning with Differential Privacy". CCS 2016.
       arXiv:1607.00133.
    .. [2] S. Gopi, Y. T. Lee, L. Wutschitz. "Numerical Composition of Differential
       Privacy". NeurIPS 2021. arXiv:2106.02848.
    .. [3] X. Li, F. Tramèr, P. Liang, T. Hashimoto. "Large Language Models Can Be Strong
       Differentially Private Learners". ICLR 2022. arXiv:2110.05679 (ghost clipping).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import DPSGDClassifier
    >>> X, y = make_classification(200, n_features=10, random_state=0)
    >>> clf = DPSGDClassifier(noise_multiplier=1.0, max_epochs=2, batch_size=50,
    ...                       module__hidden_sizes=(16,), random_state=0).fit(X, y)
    >>> clf.n_steps_, clf.sample_rate_
    (8, 0.25)
    >>> bool(clf.epsilon_ < 10), len(clf.history[:, "epsilon"])
    (True, 2)
    """

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "criterion": [CROSS_ENTROPY],
        "noise_multiplier": [Interval(Real, 0, None, closed="left")],
        "max_grad_norm": [Interval(Real, 0, None, closed="neither")],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "target_epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "accountant": [StrOptions(set(_ACCOUNTANTS))],
        "grad_sample_mode": [StrOptions(set(_GRAD_SAMPLE_MODES))],
        "secure_noise": ["boolean"],
    }

    def __init__(
        self,
        module=MLP,
        *,
        noise_multiplier=0.01,
        max_grad_norm=1.0,
        delta=1e-5,
        target_epsilon=None,
        accountant="prv",
        grad_sample_mode="auto",
        secure_noise=False,
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.noise_multiplier = noise_multiplier
        self.max_grad_norm = max_grad_norm
        self.delta = delta
        self.target_epsilon = target_epsilon
        self.accountant = accountant
        self.grad_sample_mode = grad_sample_mode
        self.secure_noise = secure_noise

    # ------------------------------------------------------------------ set-up

    def _setup(self, X, y, classes=None):
        X, y = super()._setup(X, y, classes=classes)
        if self.secure_noise:  # not derivable from random_state, nor from anything saved
            self.training_seed_ = fresh_seed()
        continuing = self.warm_start and self.initialized_ and hasattr(self, "accountant_")
        if not continuing:  # fit restarts the accounting, as it restarts the weights
            self.accountant_ = create_accountant(self.accountant)
            self.n_steps_ = 0
            self.epsilon_ = 0.0
            self.delta_ = float(self.delta)
            self.noise_multiplier_ = (
                None if self.target_epsilon is not None else float(self.noise_multiplier)
            )
            self.grad_sample_mode_ = (
                "ghost" if self.grad_sample_mode == "auto" else self.grad_sample_mode
            )
        return X, y

    @property
    def _default_callbacks(self):
        return insert_callback(super()._default_callbacks, "privacy", _PrivacyLog())

    def initialize_module(self):
        """Build the module, then make it trainable with per-record gradients."""
        super().initialize_module()
        module = self.module_.train()
        if not ModuleValidator.is_valid(module):
            module = ModuleValidator.fix(_batchnorm1d_to_groupnorm(copy.deepcopy(module)))
        try:
            ModuleValidator.validate(module, strict=True)
        except UnsupportedModuleError as exc:
            raise ValueError(
                f"{type(self).__name__} cannot train this module with per-record "
                f"gradients, even after opacus' ModuleValidator.fix: {exc}"
            ) from exc
        self.module_ = module
        return self

    def get_iterator(self, dataset, training=False):
        """Poisson-sampled batches for training; the base class's batches otherwise."""
        if not training:
            return super().get_iterator(dataset, training=False)
        X, y = in_memory_arrays(dataset, "DPSGDClassifier")
        self._start_private_training(len(X))
        return _PoissonBatches(X, y, self.sample_rate_, self._steps_per_epoch(len(X)))

    # ------------------------------------------------------------------ training

    def partial_fit(self, X, y, classes=None, **fit_params):
        """Continue training for ``max_epochs`` more epochs, and the accountant with it.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training records.
        y : array-like of shape (n_samples,)
            Labels, from the classes seen so far (or from ``classes``).
        classes : array-like, default=None
            All labels, when the first call does not show them all.
        **fit_params
            Passed to skorch's ``partial_fit``.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        try:
            return super().partial_fit(X, y, classes=classes, **fit_params)
        finally:
            # skorch's on_train_end releases opacus' hooks; an exception skips it
            self._release_private_training()

    def training_objective(self, logits, targets, batches):
        """One cross-entropy per record, ``(K, B)`` (0 on padding): DP-SGD clips each
        record's gradient, so there is no mean (the private step of skorch's loop and
        the batched bank's, :mod:`~skmia.defenses._dp_batched`, both sum them)."""
        ce = batches.per_record(partial(F.cross_entropy, reduction="none"), logits, targets)
        return batches.masked(ce)

    def train_step(self, batch, **fit_params):
        """One noisy step: per-record clipped gradients, Gaussian noise, then SGD."""
        private = getattr(self, "_private", None)
        if private is None:
            raise RuntimeError(
                "DPSGDClassifier.train_step runs inside fit / partial_fit, whose training "
                "iterator sets up the private training."
            )
        try:
            step = self._private_step(private, batch, **fit_params)
        except _IncompleteNorms:
            # a network whose layers the output-only first pass does not all reach:
            # the full first pass from now on
            self._release_private_training()
            self._start_private_training(private.n_rows, fast_norms=False)
            step = self._private_step(self._private, batch, **fit_params)
        except NotImplementedError:
            # ghost clipping cannot handle this network (e.g. tied parameters): fall
            # back, once, to per-record gradients
            if self.grad_sample_mode != "auto" or private.mode != "ghost":
                raise
            self._release_private_training()
            self.grad_sample_mode_ = "hooks"
            self._start_private_training(private.n_rows)
            step = self._private_step(self._private, batch, **fit_params)
        self.accountant_.step(noise_multiplier=self.noise_multiplier_,
                              sample_rate=self.sample_rate_)
        self.n_steps_ += 1
        return step

    def _private_step(self, private, batch, **fit_params):
        optimizer = private.optimizer
        optimizer.zero_grad(set_to_none=True)
        private.outputs.clear()
        self._set_training(True)
        Xi, yi = unpack_data(batch)
        with _quiet_backward_hooks():
            y_pred = self.infer(Xi, **fit_params)
            losses = self.get_loss(y_pred, yi, X=Xi, training=True)
            if losses.ndim != 1 or len(losses) != len(y_pred):
                raise ValueError(
                    f"{type(self).__name__}.training_loss must return one loss per record "
                    f"(shape ({len(y_pred)},)), got shape {tuple(losses.shape)}."
                )
            private.backward(losses)
        self.notify(
            "on_grad_computed",
            named_parameters=TeeGenerator(self.get_all_learnable_params()),
            batch=batch,
            training=True,
        )
        optimizer.step()
        loss = losses.detach().mean() if len(losses) else torch.zeros((), device=y_pred.device)
        return {"loss": loss, "y_pred": y_pred}

    def _steps_per_epoch(self, n_rows):
        return max(1, math.ceil(n_rows / self._batch_size(n_rows)))

    def _batch_size(self, n_rows):
        batch_size = self.get_params_for("iterator_train").get("batch_size", self.batch_size)
        return n_rows if batch_size == -1 else int(batch_size)

    def _settle_sampling(self, n_rows):
        """Set ``sample_rate_`` for ``n_rows`` training rows and, once, the noise
        multiplier a ``target_epsilon`` asks for (both training paths start here)."""
        batch_size = self._batch_size(n_rows)
        if batch_size < 1:
            raise ValueError(f"batch_size must be a positive int or -1, got {batch_size}.")
        self.sample_rate_ = min(1.0, batch_size / n_rows)
        if self.noise_multiplier_ is None:
            self.noise_multiplier_ = self._noise_for_target(n_rows)

    def _start_private_training(self, n_rows, fast_norms=True):
        """Attach opacus to the module and optimizer for one training call."""
        self._release_private_training()
        self._settle_sampling(n_rows)
        self._private = _PrivateTraining(
            self.module_,
            self.optimizer_,
            mode=self.grad_sample_mode_,
            noise_multiplier=self.noise_multiplier_,
            max_grad_norm=float(self.max_grad_norm),
            expected_batch_size=self.sample_rate_ * n_rows,
            n_rows=n_rows,
            fast_norms=fast_norms,
        )
        canaries = getattr(self, "_gradient_canaries", None)
        if canaries is not None:  # a white-box audit's gradient canaries (_dp_canaries)
            canaries.attach(self._private.optimizer, sample_rate=self.sample_rate_,
                            max_grad_norm=float(self.max_grad_norm))

    def _noise_for_target(self, n_rows):
        steps = self.max_epochs * self._steps_per_epoch(n_rows)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # opacus' notes on its alpha grid
            try:  # opacus' get_noise_multiplier, its accountant's RDP cached
                return float(noise_for_epsilon(float(self.target_epsilon), self.delta_,
                                               self.sample_rate_, steps, self.accountant))
            except ValueError as exc:
                raise ValueError(
                    f"no noise multiplier reaches target_epsilon={self.target_epsilon} at "
                    f"delta={self.delta_} in {steps} steps of sample rate "
                    f"{self.sample_rate_:.4g}: {exc}"
                ) from exc

    def _release_private_training(self):
        private = getattr(self, "_private", None)
        if private is not None:
            private.close()
        self._private = None

    def _update_epsilon(self):
        key = (tuple(map(tuple, self.accountant_.history)), self.delta_, self.accountant)
        if getattr(self, "_epsilon_key", None) != key:  # the accountants take a while
            self.epsilon_ = privacy_epsilon(*key)
            self._epsilon_key = key
        return self.epsilon_

    def _warn_if_weak(self):
        for _, message in self._weak_privacy().values():
            warnings.warn(message, WeakPrivacyWarning, stacklevel=2)

    def _weak_privacy(self):
        """``{kind: (how weak, message)}`` for each way the guarantee reached is too
        weak to mean anything (``"epsilon"``, ``"delta"``); empty when it is not."""
        n_rows = len(getattr(self, "train_indices_", ()))
        weak = {}
        if not self.epsilon_ <= MEANINGFUL_EPSILON:
            weak["epsilon"] = (self.epsilon_, (
                f"DP-SGD reached epsilon = {self.epsilon_:.3g} at delta = {self.delta_:g} "
                f"after {self.n_steps_} steps (noise_multiplier={self.noise_multiplier_:g}, "
                f"sample rate {self.sample_rate_:.3g}): no meaningful privacy guarantee "
                f"(epsilon > {MEANINGFUL_EPSILON:g}). More noise, fewer epochs or a smaller "
                f"batch lower it; target_epsilon chooses the noise."))
        if n_rows and self.delta_ >= 1.0 / n_rows:
            weak["delta"] = (self.delta_ * n_rows, (
                f"delta = {self.delta_:g} is not below 1/n = {1.0 / n_rows:.3g} for the "
                f"{n_rows} training rows: a mechanism that publishes a few rows outright "
                f"meets such a guarantee. Choose delta well below 1/n."))
        return weak

    # ------------------------------------------------------------------ saving (skmia.io)

    _fitted_attributes = {
        **MIADefenseClassifier._fitted_attributes, "epsilon_": float, "delta_": float,
        "sample_rate_": float, "noise_multiplier_": Opt(float), "n_steps_": Int(0),
        "grad_sample_mode_": str,
    }
    _state_attributes = ("accountant_",)
    # the noise seed also draws the Poisson batches: whoever holds the files could
    # replay the noise, so it is never written and a loaded model draws a fresh one
    _unsaved_attributes = {"training_seed_": "the seed of {}'s noise"}
    _ACCOUNTANT_SPEC = {"accountant": {"mechanism": OneOf("prv", "rdp"),
                                       "history": ListOf(ListOf(float))}}

    def _saved_state(self):
        history = [[float(sigma), float(q), int(steps)]
                   for sigma, q, steps in self.accountant_.history]
        return {"accountant": {"mechanism": self.accountant_.mechanism(),
                               "history": history}}, {}, {}

    def _restore_saved_state(self, values, tensors, estimators):
        if tensors or estimators:
            raise ValueError("a DPSGDClassifier saves no tensors or estimators of its own")
        spec = check_json(values, self._ACCOUNTANT_SPEC, "model.json")["accountant"]
        steps = []
        for i, step in enumerate(spec["history"]):
            if len(step) != 3 or isinstance(step[2], float):
                raise ValueError(f"key 'accountant.history.{i}' should be [sigma, q, steps]")
            steps.append((float(step[0]), float(step[1]), int(step[2])))
        accountant = create_accountant(spec["mechanism"])
        accountant.history = steps
        self.accountant_ = accountant

    def _draw_unsaved(self):
        self.training_seed_ = fresh_seed()

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_state(self):
        # the noise seed, which save_estimator never writes: a run's checkpoint keeps it
        # until the run completes, then is deleted
        return {"training_seed_": int(self.training_seed_)}, {}

    def _restore_checkpoint_state(self, values, tensors):
        seed = values["training_seed_"]
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"training_seed_ should be an int, got {seed!r}")
        self.training_seed_ = seed

    # ------------------------------------------------------------------ pickling

    def __getstate__(self):
        state = super().__getstate__()
        # opacus' hooks and DP optimizer exist only during training; never pickled
        state.pop("_private", None)
        return state


# the batched bank reproduces this class's own training loop, its private step
# (see skmia.defenses._batchable): a subclass that changes it is trained model by model
DPSGDClassifier._batched_loop = DPSGDClassifier
