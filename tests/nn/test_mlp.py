import pytest
import torch
from torch import nn

from skmia.nn import MLP


def n_parameters(module):
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("n_features, expected", [(600, 1_317_348), (6_169, 7_020_004)])
def test_paper_parameter_counts(n_features, expected):
    assert n_parameters(MLP(n_features, 100)) == expected


def test_architecture_matches_the_paper():
    net = MLP(600, 100)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [
        (600, 1024), (1024, 512), (512, 256), (256, 128), (128, 100),
    ]
    assert sum(isinstance(m, nn.Tanh) for m in net.modules()) == 4
    assert not any(isinstance(m, nn.Dropout) for m in net.modules())
    logits = net(torch.randn(3, 600))
    assert logits.shape == (3, 100)


def test_dropout_only_before_the_output_layer():
    net = MLP(20, 5, hidden_sizes=(8, 8), dropout=0.5)
    dropouts = [name for name, m in net.named_modules() if isinstance(m, nn.Dropout)]
    assert dropouts == ["classifier.0"]
    assert isinstance(net.classifier[1], nn.Linear)
    assert n_parameters(net) == n_parameters(MLP(20, 5, hidden_sizes=(8, 8)))
    x = torch.ones(64, 20)
    net.train()
    assert not torch.equal(net(x), net(x)), "dropout is active in training mode"
    net.eval()
    assert torch.equal(net(x), net(x))


def test_custom_activation_and_sizes():
    net = MLP(4, 3, hidden_sizes=(5,), activation=nn.ReLU)
    assert isinstance(net.features[1], nn.ReLU)
    assert n_parameters(net) == 4 * 5 + 5 + 5 * 3 + 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_features": 0, "n_classes": 3}, "n_features >= 1"),
        ({"n_features": 3, "n_classes": 3, "dropout": 1.0}, "dropout must be in"),
        ({"n_features": 3, "n_classes": 3, "hidden_sizes": (4, 0)}, "hidden_sizes"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MLP(**kwargs)
