import numpy as np
import pandas as pd
import pytest
import skorch
import torch
from sklearn.exceptions import NotFittedError
from torch import nn

from skmia.attacks import WHITE_BOX_SIGNALS, compute_signals
from skmia.nn import MLP

N_FEATURES, N_CLASSES = 12, 5


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, N_FEATURES)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, n)
    return X, y


def _reference_norms(model, X, y):
    """The reference code's loop: one record at a time, one backward pass each."""
    model.eval()
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    params = [p for p in model.parameters() if p.requires_grad]
    rows = []
    for i in range(len(y)):
        x = X[i : i + 1].clone().requires_grad_(True)
        loss = nn.functional.cross_entropy(model(x), y[i : i + 1])
        grads = torch.autograd.grad(loss, [x, *params], allow_unused=True)
        gx = grads[0].reshape(-1).double()
        gw = torch.cat([g.reshape(-1) for g in grads[1:] if g is not None]).double()
        rows.append([gx.abs().sum(), gx.norm(), gw.abs().sum(), gw.norm()])
    return np.array(rows)


class _Awkward(nn.Module):
    """Everything the Linear identities cannot cover: batch norm, a layer applied twice,
    tied weights, an in-place activation after a Linear, an unused layer."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(N_FEATURES, 16)
        self.norm = nn.BatchNorm1d(16)
        self.twice = nn.Linear(16, 16)
        self.head = nn.Linear(16, N_CLASSES)
        self.tied = nn.Linear(16, N_CLASSES, bias=False)
        self.tied.weight = self.head.weight
        self.unused = nn.Linear(3, 3)

    def forward(self, x):
        h = torch.relu_(self.first(x))
        h = self.norm(h)
        h = torch.tanh(self.twice(torch.tanh(self.twice(h))))
        return self.head(h) + 0.5 * self.tied(h)


class _ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3)
        self.fc = nn.Linear(3 * 4 * 4, N_CLASSES)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _awkward():
    torch.manual_seed(1)
    model = _Awkward()
    with torch.no_grad():  # non-trivial running statistics
        model.train()(torch.randn(64, N_FEATURES) * 2 + 1)
    model.norm.weight.data.uniform_(0.5, 1.5)
    model.norm.bias.data.uniform_(-0.5, 0.5)
    return model


@pytest.fixture(scope="module")
def net():
    """A plain skorch classifier trained for a few epochs."""
    X, y = _data(200)
    torch.manual_seed(0)
    return skorch.NeuralNetClassifier(
        MLP,
        module__n_features=N_FEATURES,
        module__n_classes=N_CLASSES,
        module__hidden_sizes=(32, 16),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        max_epochs=5,
        batch_size=32,
        train_split=None,
        verbose=0,
    ).fit(X, y)


def test_columns_and_values(net):
    X, y = _data(50, seed=1)
    signals = compute_signals(net, X, y)
    logit_cols = [f"logit_{k}" for k in range(N_CLASSES)]
    proba_cols = [f"proba_{k}" for k in range(N_CLASSES)]
    assert list(signals.columns) == [*logit_cols, *proba_cols, "label", "loss", "score"]
    assert len(signals) == 50
    assert signals["label"].tolist() == y.tolist()
    assert signals["label"].dtype == np.int64
    assert signals["loss"].dtype == np.float32  # the model's dtype, as the reference

    logits = signals[logit_cols].to_numpy()
    np.testing.assert_allclose(logits, net.forward(X).numpy(), rtol=1e-6)
    proba = signals[proba_cols].to_numpy()
    np.testing.assert_allclose(proba, net.predict_proba(X), rtol=1e-5)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    p_y = proba[np.arange(50), y]
    np.testing.assert_allclose(signals["loss"], -np.log(p_y), rtol=1e-4)
    # score is the log-odds of the true class: log p_y - log(1 - p_y)
    assert signals["score"].dtype == np.float64
    np.testing.assert_allclose(signals["score"], np.log(p_y) - np.log1p(-p_y), rtol=1e-3)


def test_skorch_net_and_its_module_agree(net):
    X, y = _data(30, seed=2)
    from_net = compute_signals(net, X, y, white_box=True)
    from_module = compute_signals(net.module_, X, y, white_box=True)
    pd.testing.assert_frame_equal(from_net, from_module)


def test_batch_size_does_not_change_the_signals(net):
    X, y = _data(70, seed=3)
    one = compute_signals(net, X, y, white_box=True, batch_size=7)
    two = compute_signals(net, X, y, white_box=True, batch_size=512)
    pd.testing.assert_frame_equal(one, two, rtol=1e-5, atol=1e-6)
    black = compute_signals(net, X, y, batch_size=16)
    pd.testing.assert_frame_equal(black, one[black.columns], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make_model",
    [
        pytest.param(lambda: MLP(N_FEATURES, N_CLASSES, hidden_sizes=(16, 8)), id="mlp"),
        pytest.param(
            lambda: nn.Sequential(
                nn.Linear(N_FEATURES, 16), nn.ReLU(inplace=True), nn.Linear(16, N_CLASSES)
            ),
            id="inplace-relu",
        ),
        pytest.param(_awkward, id="batchnorm-shared-tied"),
    ],
)
def test_white_box_norms_match_a_per_record_loop(make_model):
    torch.manual_seed(0)
    model = make_model()
    X, y = _data(40, seed=4)
    signals = compute_signals(model, X, y, white_box=True, batch_size=16)
    expected = _reference_norms(model, X, y)
    np.testing.assert_allclose(signals[list(WHITE_BOX_SIGNALS)].to_numpy(), expected, rtol=1e-5)


def test_white_box_norms_of_a_conv_net_on_images():
    torch.manual_seed(0)
    model = _ConvNet()
    rng = np.random.default_rng(5)
    X = rng.normal(size=(20, 1, 6, 6)).astype(np.float32)
    y = rng.integers(0, N_CLASSES, 20)
    signals = compute_signals(model, X, y, white_box=True, batch_size=8)
    expected = _reference_norms(model, X, y)
    np.testing.assert_allclose(signals[list(WHITE_BOX_SIGNALS)].to_numpy(), expected, rtol=1e-5)


def test_frozen_parameters_are_left_out():
    torch.manual_seed(0)
    model = MLP(N_FEATURES, N_CLASSES, hidden_sizes=(8,))
    model.features[0].weight.requires_grad_(False)
    X, y = _data(10, seed=6)
    signals = compute_signals(model, X, y, white_box=True)
    expected = _reference_norms(model, X, y)  # over the parameters that require grad
    np.testing.assert_allclose(signals[list(WHITE_BOX_SIGNALS)].to_numpy(), expected, rtol=1e-5)


def test_the_model_is_left_as_it_was():
    model = _awkward().train()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    X, y = _data(30, seed=7)
    first = compute_signals(model, X, y, white_box=True)
    assert model.training  # the mode is restored
    assert all(p.grad is None for p in model.parameters())  # no .grad written
    for key, value in model.state_dict().items():  # no running statistic updated
        torch.testing.assert_close(value, state[key], rtol=0, atol=0)
    # and eval mode was used: a second call gives the same signals
    pd.testing.assert_frame_equal(first, compute_signals(model, X, y, white_box=True))


def test_labels_are_mapped_through_classes():
    torch.manual_seed(0)
    model = MLP(N_FEATURES, 3, hidden_sizes=(8,))
    X, _ = _data(6, seed=8)
    y = np.array(["b", "c", "a", "c", "b", "a"])
    signals = compute_signals(model, X, y, classes=["c", "a", "b"])
    assert signals["label"].tolist() == [2, 0, 1, 0, 2, 1]
    with pytest.raises(ValueError, match=r"labels the model does not know: \['z'\]"):
        compute_signals(model, X, np.array(["a", "b", "z", "a", "a", "a"]), classes=["c", "a", "b"])
    with pytest.raises(ValueError, match="classes has 2 entries but the model has 3 outputs"):
        compute_signals(model, X, y, classes=["a", "b"])


def test_a_net_that_missed_a_class_in_training_reads_y_as_indices():
    # skorch's classes_ is np.unique of the training labels: [0, 1, 3] here, while the
    # module has 4 outputs; the labels are then the output indices themselves
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, N_FEATURES)).astype(np.float32)
    y = rng.choice([0, 1, 3], 40)
    net = skorch.NeuralNetClassifier(
        MLP,
        module__n_features=N_FEATURES,
        module__n_classes=4,
        module__hidden_sizes=(8,),
        criterion=nn.CrossEntropyLoss,
        max_epochs=1,
        train_split=None,
        verbose=0,
    ).fit(X, y)
    signals = compute_signals(net, X, y)
    assert signals["label"].tolist() == y.tolist()


def test_bad_input(net):
    X, y = _data(10, seed=10)
    with pytest.raises(ValueError, match="same number of rows, got 10 and 9"):
        compute_signals(net, X, y[:9])
    with pytest.raises(ValueError, match=r"class indices outside 0..4 .*\[7\]"):
        compute_signals(net.module_, X, np.r_[y[:9], 7])
    X_nan = X.copy()
    X_nan[3, 2] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        compute_signals(net, X_nan, y)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        compute_signals(net, X, y, batch_size=0)
    with pytest.raises(TypeError, match="model must be a fitted skorch net"):
        compute_signals(object(), X, y)
    unfitted = skorch.NeuralNetClassifier(MLP, criterion=nn.CrossEntropyLoss)
    with pytest.raises(NotFittedError, match="not initialized"):
        compute_signals(unfitted, X, y)


def test_a_net_trained_on_probabilities_is_refused():
    class Softmax(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(N_FEATURES, N_CLASSES)

        def forward(self, x):
            return torch.softmax(self.fc(x), dim=1)

    X, y = _data(20, seed=11)
    net = skorch.NeuralNetClassifier(Softmax, max_epochs=1, train_split=None, verbose=0)
    net.fit(X, y)  # skorch's default criterion: NLLLoss on probabilities
    with pytest.raises(ValueError, match="NLLLoss"):
        compute_signals(net, X, y)


def test_wrong_number_of_features_is_named(net):
    from skmia.defenses import VanillaClassifier

    X, y = _data(40, seed=4)
    defense = VanillaClassifier(max_epochs=1, module__hidden_sizes=(8,), random_state=0)
    defense.fit(X, y)
    with pytest.raises(ValueError, match=rf"X has {X.shape[1] - 1} features, but the model "
                                         rf"expects {X.shape[1]}\."):
        compute_signals(defense, X[:, 1:], y)
    # a net that does not record its input shape: the module's own complaint, as ValueError
    with pytest.raises(ValueError, match=r"the model cannot take records of shape \(11,\)"):
        compute_signals(net, X[:, 1:], y)
