"""The NN attack: a small network on each record's sorted model outputs."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from .._sklearn_compat import Interval, StrOptions
from ._base import MembershipInferenceAttack
from ._signals import output_columns

__all__ = ["NNAttack"]

_OUTPUTS = ("logit", "proba")


class NNAttack(MembershipInferenceAttack):
    """Membership by a neural network on each record's sorted model outputs.

    Each record's outputs (``logit_0 .. logit_{C-1}`` by default) are sorted in
    ascending order, which makes the attack blind to which class is which and sensitive
    to the shape of the output only, and fed to a network with one hidden ReLU layer of
    100 units and a sigmoid output, trained with binary cross-entropy and Adam
    (learning rate 1e-3, batch 256) for 200 epochs: the reference code's NN attack.

    Parameters
    ----------
    output : {"logit", "proba"}, default="logit"
        Which outputs to read: the logits (the reference code's choice) or the softmax
        probabilities (what a prediction API usually returns).
    hidden_layer_sizes : tuple of int, default=(100,)
        Hidden ReLU layers of the attack network.
    max_iter : int, default=200
        Number of epochs. Training runs all of them (no early stopping), as the
        reference code does.
    batch_size : int, default=256
        Minibatch size (capped at the number of records).
    learning_rate_init : float, default=0.001
        Adam's learning rate.
    random_state : int, RandomState instance or None, default=None
        Seeds the network's initialisation and the shuffling of minibatches.
    scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.

    Attributes
    ----------
    estimator_ : sklearn.neural_network.MLPClassifier
        The trained attack network.
    n_iter_ : int
        Epochs run.
    n_model_classes_ : int
        Number of outputs per record (the target model's classes).
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: non-member, member.
    n_features_in_ : int
        Number of output columns read.
    feature_names_in_ : ndarray of str
        Their names (only when fitted on a DataFrame).

    See Also
    --------
    skmia.attacks.compute_signals : the signals table it reads.

    Notes
    -----
    Threat model: a black-box adversary that sees the output vector of each record it
    queries (labels are not used); it trains the attack network on a shadow model's
    outputs on its members and non-members (the reference protocol), or, as an auditor,
    on the target's own by cross-validation.

    ``X`` is a DataFrame of signals, or a plain 2-D array read as the rows of model
    outputs (one column per class, in any order since each row is sorted).

    Differences from the reference code: there the hidden layer sits in a plain Python
    list, so it is never registered with the optimiser and only the output layer
    trains (the hidden layer stays at its random initialisation); here every layer
    trains. The network is scikit-learn's :class:`~sklearn.neural_network.MLPClassifier`
    (Glorot initialisation, CPU). ``decision_function`` is the network's output logit;
    ``predict`` flags a member when it is positive (probability above 0.5; the reference
    counts exactly 0.5 as a member, a tie that practically never occurs).

    References
    ----------
    .. [1] R. Shokri, M. Stronati, C. Song, V. Shmatikov. "Membership Inference Attacks
       against Machine Learning Models". IEEE S&P 2017. arXiv:1610.05820.
    .. [2] A. Salem, Y. Zhang, M. Humbert, P. Berrang, M. Fritz, M. Backes. "ML-Leaks:
       Model and Data Independent Membership Inference Attacks and Defenses on Machine
       Learning Models". NDSS 2019. arXiv:1806.01246.
    .. [3] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.attacks import NNAttack
    >>> rng = np.random.default_rng(0)
    >>> members = rng.normal(size=(200, 10)) * 3     # spread-out logits: confident
    >>> nonmembers = rng.normal(size=(200, 10))
    >>> X, y = np.vstack([members, nonmembers]), np.r_[np.ones(200), np.zeros(200)]
    >>> attack = NNAttack(max_iter=50, random_state=0).fit(X, y)
    >>> attack.score(X, y) > 0.9
    True
    """

    _accepts_arrays = True

    _parameter_constraints = {
        **MembershipInferenceAttack._parameter_constraints,
        "output": [StrOptions(set(_OUTPUTS))],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "random_state": ["random_state"],
    }

    def __init__(
        self,
        *,
        output="logit",
        hidden_layer_sizes=(100,),
        max_iter=200,
        batch_size=256,
        learning_rate_init=0.001,
        random_state=None,
        scoring="accuracy",
    ):
        self.output = output
        self.hidden_layer_sizes = hidden_layer_sizes
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.random_state = random_state
        self.scoring = scoring

    def _columns(self, n_classes):
        return output_columns(self.output, n_classes or 1)

    def _fit(self, signals, array, y):
        self.estimator_ = MLPClassifier(
            hidden_layer_sizes=self.hidden_layer_sizes,
            activation="relu",
            solver="adam",
            alpha=0.0,
            batch_size=min(self.batch_size, len(y)),
            learning_rate_init=self.learning_rate_init,
            max_iter=self.max_iter,
            shuffle=True,
            random_state=self.random_state,
            tol=0.0,
            n_iter_no_change=self.max_iter,
        )
        # Minibatch products this small run fastest on one BLAS thread (several threads
        # spin and wait, badly so on a busy machine), as scikit-learn's KMeans does too.
        with threadpool_limits(limits=1, user_api="blas"), warnings.catch_warnings():
            # a fixed number of epochs is the stopping rule, as in the reference code
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.estimator_.fit(np.sort(array, axis=1), y)
        self.n_iter_ = self.estimator_.n_iter_

    def decision_function(self, X):
        """The attack network's output logit, higher for members.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals) or array of shape \
(n_samples, n_model_classes)
            Signals, or the rows of model outputs.

        Returns
        -------
        decision : ndarray of shape (n_samples,)
            ``log(p / (1 - p))`` of the membership probability ``p``.
        """
        check_is_fitted(self)
        _, array, _ = self._validate_signals(X, reset=False)
        hidden = np.sort(array, axis=1).astype(np.float64)
        net = self.estimator_
        for weights, bias in zip(net.coefs_[:-1], net.intercepts_[:-1], strict=True):
            hidden = np.maximum(hidden @ weights + bias, 0.0)
        return (hidden @ net.coefs_[-1] + net.intercepts_[-1]).ravel()

    def predict(self, X):
        """Membership: 1 where the network's membership probability exceeds 0.5.

        Parameters
        ----------
        X : pandas.DataFrame or array
            Signals, or the rows of model outputs.

        Returns
        -------
        y_pred : ndarray of int64 of shape (n_samples,)
            1 = member, 0 = non-member.
        """
        return (self.decision_function(X) > 0).astype(np.int64)
