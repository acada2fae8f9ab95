"""The fully connected network of the RelaxLoss paper's Texas100 / Purchase100 runs."""

from torch import nn

__all__ = ["MLP"]


class MLP(nn.Module):
    """Multi-layer perceptron used for Texas100 and Purchase100 in the RelaxLoss paper.

    ``n_features -> 1024 -> 512 -> 256 -> 128 -> n_classes`` with a Tanh after every
    hidden layer. The hidden part is ``self.features`` and the output layer
    ``self.classifier``, as in the reference code, so that defenses can reach either.

    Parameters
    ----------
    n_features : int
        Number of input features (600 for Purchase100, 6,169 for Texas100).
    n_classes : int
        Number of classes; the network returns one logit per class.
    hidden_sizes : sequence of int, default=(1024, 512, 256, 128)
        Widths of the hidden layers.
    activation : type of torch.nn.Module, default=torch.nn.Tanh
        Activation class, instantiated once after each hidden linear layer.
    dropout : float, default=0.0
        When positive, a ``Dropout(dropout)`` layer right before the output layer (and
        nowhere else), as the reference code's dropout defense does.

    Notes
    -----
    With the default sizes the network has 1,317,348 parameters for Purchase100
    (600 features) and 7,020,004 for Texas100 (6,169 features), 100 classes each.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import torch
    >>> from skmia.nn import MLP
    >>> net = MLP(600, 100)
    >>> sum(p.numel() for p in net.parameters())
    1317348
    >>> net(torch.zeros(2, 600)).shape
    torch.Size([2, 100])
    """

    def __init__(
        self,
        n_features,
        n_classes,
        hidden_sizes=(1024, 512, 256, 128),
        activation=nn.Tanh,
        dropout=0.0,
    ):
        super().__init__()
        n_features, n_classes = int(n_features), int(n_classes)
        hidden_sizes = tuple(int(h) for h in hidden_sizes)
        if n_features < 1 or n_classes < 1:
            raise ValueError(
                f"MLP needs n_features >= 1 and n_classes >= 1, got "
                f"n_features={n_features}, n_classes={n_classes}."
            )
        if any(h < 1 for h in hidden_sizes):
            raise ValueError(f"hidden_sizes must be positive integers, got {hidden_sizes}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
        self.n_features = n_features
        self.n_classes = n_classes

        layers = []
        width = n_features
        for h in hidden_sizes:
            layers += [nn.Linear(width, h), activation()]
            width = h
        self.features = nn.Sequential(*layers)
        output = nn.Linear(width, n_classes)
        self.classifier = nn.Sequential(nn.Dropout(dropout), output) if dropout > 0 else output

    def forward(self, x):
        """Return the logits for a batch ``x`` of shape ``(n, n_features)``."""
        return self.classifier(self.features(x))

    def extra_repr(self):
        return f"n_features={self.n_features}, n_classes={self.n_classes}"

