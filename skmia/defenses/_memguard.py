"""MemGuard (Jia et al., CCS 2019): noise on the confidence vector that fools an attack."""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from .._sklearn_compat import Interval
from ..nn import MLP
from ._base import MIADefenseClassifier, insert_callback
from ._outputs import ReleasedOutputs, ReleasingClassifierMixin
from ._reference_set import ReferenceSetMixin

__all__ = ["MemGuardClassifier", "memguard_noise"]

# the paper's code: weights of the three terms, the step and the c3 schedule
_C1, _C2, _C3_START, _C3_STOP, _STEP = 1.0, 10.0, 0.1, 1e5, 0.1


def _defender_network(n_classes):
    """The defender's attack classifier on sorted log-probabilities (the paper's
    256-128-64 network)."""
    return torch.nn.Sequential(
        torch.nn.Linear(n_classes, 256), torch.nn.ReLU(),
        torch.nn.Linear(256, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 64), torch.nn.ReLU(),
        torch.nn.Linear(64, 1),
    )


def memguard_noise(logits, defender, *, max_steps=300):
    """Phase I of MemGuard: the perturbed logits that put the defender at 0.5.

    For each row of ``logits`` (sorted ascending, the predicted class last), gradient
    steps of length 0.1 along the normalised gradient of::

        c1·|g(z')| + c2·ReLU(max_{j≠top} z'_j − z'_top) + c3·‖softmax(z') − softmax(z)‖₁

    (``g`` the defender's logit: 0 is a coin flip) until the defender's decision flips
    side of 0.5 with the predicted class kept, at most ``max_steps`` steps; on success the
    search restarts with ``c3`` ten times larger (less noise), up to 1e5, and the last
    success is kept. Rows where it never succeeds are left unperturbed.

    Parameters
    ----------
    logits : torch.Tensor of shape (n, C)
        Sorted ascending along dim 1.
    defender : torch.nn.Module
        Maps ``(n, C)`` sorted logits to ``(n, 1)`` logits of "member".
    max_steps : int, default=300

    Returns
    -------
    perturbed : torch.Tensor of shape (n, C)
    """
    z0 = logits.detach()
    top = z0.shape[1] - 1

    def g(z):  # the defender reads log-probabilities: what softmax outputs reveal
        return defender(torch.log_softmax(z, dim=1))[:, 0]

    with torch.no_grad():
        g0 = g(z0)
    p0 = torch.softmax(z0, dim=1)
    result = z0.clone()
    active = torch.nonzero((torch.sigmoid(g0) - 0.5).abs() > 1e-5).squeeze(1)
    c3 = _C3_START
    while len(active) and c3 <= _C3_STOP:
        z, moving = z0[active].clone(), torch.arange(len(active))
        done = torch.zeros(len(active), dtype=torch.bool)
        for _ in range(max_steps):
            if not len(moving):
                break
            rows = active[moving]
            z_var = z[moving].clone().requires_grad_(True)
            others = z_var[:, :top].max(dim=1).values
            loss = (_C1 * g(z_var).abs() + _C2 * F.relu(others - z_var[:, top])
                    + c3 * (torch.softmax(z_var, dim=1) - p0[rows]).abs().sum(dim=1))
            (grad,) = torch.autograd.grad(loss.sum(), z_var)
            step = z_var.detach() - _STEP * grad / grad.norm(dim=1, keepdim=True).clamp_min(
                1e-12)
            z[moving] = step
            with torch.no_grad():
                finished = (step.argmax(dim=1) == top) & (g0[rows] * g(step) <= 0)
            done[moving[finished]] = True
            moving = moving[~finished]
        result[active[done]] = z[done]
        active = active[done]
        c3 *= 10
    return result


class _MemGuardOutputs(ReleasedOutputs):
    """MemGuard's released output: Phase I's noise, added with a probability that
    keeps the expected L1 distortion of the confidence vector within the budget."""

    def __init__(self, network, n_classes, seed=0, budget=1.0, max_steps=300):
        super().__init__(network, seed)
        self.defender = _defender_network(n_classes)
        self.budget = budget
        self.max_steps = max_steps

    def release(self, X):
        logits = self.network(X).detach()
        order = torch.argsort(logits, dim=1)
        sorted_logits = torch.gather(logits, 1, order)
        with torch.enable_grad(), _frozen(self.defender):
            noisy = memguard_noise(sorted_logits, self.defender, max_steps=self.max_steps)
        perturbed = torch.zeros_like(logits).scatter(1, order, noisy)
        distortion = (torch.softmax(perturbed, 1) - torch.softmax(logits, 1)).abs().sum(1)
        keep_probability = torch.clamp(self.budget / distortion.clamp_min(1e-12), max=1.0)
        draws = torch.as_tensor([rng.random() for rng in self.query_generators(X)],
                                dtype=keep_probability.dtype, device=logits.device)
        add = (draws < keep_probability) & (distortion > 0)
        return torch.where(add[:, None], perturbed, logits)


@contextmanager
def _frozen(module):
    """The defender in eval mode without parameter gradients, restored afterwards."""
    flags = [p.requires_grad for p in module.parameters()]
    was_training = module.training
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in zip(module.parameters(), flags, strict=True):
            p.requires_grad_(flag)
        module.train(was_training)


class _TrainDefender(Callback):
    """At the end of each training call, fit the defender's attack classifier."""

    def on_train_end(self, net, X=None, y=None, **kwargs):
        net._fit_defender(X)


class MemGuardClassifier(ReleasingClassifierMixin, ReferenceSetMixin, MIADefenseClassifier):
    """MemGuard: noise on each confidence vector that turns an attack into a coin flip.

    The network trains as :class:`VanillaClassifier` does. The defender then trains its
    own attack classifier ``g`` (sorted log-probabilities → member), on the network's outputs on the
    training rows (members) and on a reference set of non-members (``fit(X, y,
    X_reference=..., y_reference=...)``). At inference, for each query, MemGuard finds a
    perturbation of the logits that brings ``g`` to 0.5 while keeping the predicted
    class and staying close to the original confidence vector (:func:`memguard_noise`,
    Phase I), then releases it with probability ``min(1, distortion_budget / d)``, ``d``
    its L1 distortion of the confidence vector, and the unperturbed output otherwise
    (Phase II), so that the expected distortion is at most the budget.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The network; see :class:`MIADefenseClassifier`.
    distortion_budget : float, default=1.0
        ε of Phase II: the largest expected L1 distance between the released and the
        true confidence vector, > 0 (the paper sweeps 0 to 1; 1 lets nearly every
        Phase-I perturbation through).
    max_steps : int, default=300
        Gradient steps per query and per ``c3`` of Phase I (the paper's code's 300).
    defender_epochs : int, default=200
        Full-batch Adam epochs (lr 1e-3) of the defender's attack classifier.
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier`.

    Attributes
    ----------
    raw_module_ : torch.nn.Module
        The trained network (``module_.network``): its logits are the raw outputs.
    defender_ : torch.nn.Module
        The defender's attack classifier (``module_.defender``).

    Notes
    -----
    Threat model: a black-box adversary who sees the released confidence vectors, and
    whose attack classifier behaves like the defender's. A **control**: the predicted
    label is never changed, so attacks on labels alone (the label-only attack of
    Choquette-Choo et al., arXiv:2007.14321) are untouched, and so is a white-box
    adversary reading ``raw_module_``. The audit is expected to break it; it is left
    out of the default rows of ``benchmarks/privacy_utility.py`` for that reason.

    The noise is drawn with a generator seeded by a hash of the query, so a query asked
    twice gets the same answer, and a saved model answers as the original did.

    References
    ----------
    .. [1] J. Jia, A. Salem, M. Backes, Y. Zhang, N. Z. Gong. "MemGuard: Defending
       against Black-Box Membership Inference Attacks via Adversarial Examples".
       CCS 2019. arXiv:1909.10594.
    .. [2] C. A. Choquette-Choo, F. Tramèr, N. Carlini, N. Papernot. "Label-Only
       Membership Inference Attacks". ICML 2021. arXiv:2007.14321.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import MemGuardClassifier
    >>> X, y = make_classification(300, n_features=10, random_state=0)
    >>> clf = MemGuardClassifier(max_epochs=3, module__hidden_sizes=(16,), max_steps=30,
    ...                          defender_epochs=20, random_state=0)
    >>> clf = clf.fit(X[:150], y[:150], X_reference=X[150:], y_reference=y[150:])
    >>> bool((clf.predict(X) == clf.raw_module_(torch.as_tensor(X, dtype=torch.float32))
    ...       .argmax(1).numpy()).all())
    True
    """

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "distortion_budget": [Interval(Real, 0, None, closed="neither")],
        "max_steps": [Interval(Integral, 1, None, closed="left")],
        "defender_epochs": [Interval(Integral, 1, None, closed="left")],
    }

    _reference_role = "trains its defender's attack classifier"

    def __init__(self, module=MLP, *, distortion_budget=1.0, max_steps=300,
                 defender_epochs=200, **kwargs):
        super().__init__(module, **kwargs)
        self.distortion_budget = distortion_budget
        self.max_steps = max_steps
        self.defender_epochs = defender_epochs

    def fit(self, X, y, *, X_reference=None, y_reference=None, **fit_params):
        """Train the network on ``X`` (members), then the defender against the reference.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training records.
        y : array-like of shape (n_samples,)
            Their labels.
        X_reference : array-like of shape (n_reference, ...)
            Non-members for the defender's attack classifier (never trained on).
        y_reference : array-like of shape (n_reference,)
            Their labels.
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self : object
        """
        return super().fit(X, y, X_reference=X_reference, y_reference=y_reference,
                           **fit_params)

    def partial_fit(self, X, y, classes=None, *, X_reference=None, y_reference=None,
                    **fit_params):
        """Continue training the network, then refit the defender.

        Parameters
        ----------
        X, y, classes, X_reference, y_reference, **fit_params
            As in :meth:`fit`.

        Returns
        -------
        self : object
        """
        return super().partial_fit(X, y, classes=classes, X_reference=X_reference,
                                   y_reference=y_reference, **fit_params)

    @property
    def _default_callbacks(self):
        return insert_callback(super()._default_callbacks, "defender", _TrainDefender())

    def _batch_refusal(self, X, fit_params):
        """Not batched in a bank of reference models: a defender network is trained
        after the classifier, on reference rows."""
        return (f"{type(self).__name__} trains with a step of its own (its defender, "
                "trained on reference rows after the network)")

    def initialize_module(self):
        """Build the network and wrap it in MemGuard's output perturbation."""
        super().initialize_module()
        if not hasattr(self, "label_encoder_"):
            raise ValueError("MemGuardClassifier sizes its defender from the classes: call "
                             "fit.")
        seed = int(np.random.default_rng(getattr(self, "init_seed_", 0)).integers(2**62))
        self.module_ = _MemGuardOutputs(
            self.module_, len(self.label_encoder_.classes_), seed,
            float(self.distortion_budget), int(self.max_steps),
        ).to(self.device)
        return self

    def get_all_learnable_params(self):
        """The network's parameters only: the defender trains in its own loop."""
        for name, param in super().get_all_learnable_params():
            if ".defender." not in f".{name}":
                yield name, param

    @property
    def defender_(self):
        check_is_fitted(self, "module_")
        return self.module_.defender

    def _fit_defender(self, X_members):
        """Train ``g`` on sorted raw log-probabilities: training rows 1, reference rows 0."""
        if X_members is None or self._reference_input is None:
            return
        X_ref, _ = self._check_training_data(*self._reference_input, what="y_reference")
        X_mem = self._check_X(np.asarray(X_members), reset=False)
        n = min(len(X_mem), len(X_ref))
        inputs = np.concatenate([X_mem[:n], X_ref[:n]])
        labels = torch.cat([torch.ones(n), torch.zeros(n)])
        network = self.raw_module_
        was_training = network.training
        network.eval()
        with torch.no_grad():
            logits = network(torch.as_tensor(inputs).to(self.device)).cpu()
            features = torch.sort(torch.log_softmax(logits, dim=1), dim=1).values
        network.train(was_training)
        defender = self.module_.defender.cpu()
        generator = torch.Generator().manual_seed(int(self.training_seed_))
        for p in defender.parameters():  # a fresh start, reproducible
            if p.ndim > 1:
                torch.nn.init.kaiming_uniform_(p, a=5 ** 0.5, generator=generator)
            else:
                torch.nn.init.zeros_(p)
        optimizer = torch.optim.Adam(defender.parameters(), lr=1e-3)
        defender.train()
        for _ in range(self.defender_epochs):
            optimizer.zero_grad()
            loss = F.binary_cross_entropy_with_logits(defender(features)[:, 0], labels)
            loss.backward()
            optimizer.step()
        defender.eval()
        for p in defender.parameters():
            p.grad = None
        self.module_.defender.to(self.device)
