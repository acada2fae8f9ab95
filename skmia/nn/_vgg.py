"""VGG11 with batch norm, the RelaxLoss paper's second CIFAR network."""

import torch
from torch import nn

from ._head import check_head
from ._resnet import RandomCropFlip, init_conv_bn

__all__ = ["vgg11_bn"]

# configuration "A" of Simonyan & Zisserman: output channels of each 3x3 convolution,
# "M" a 2x2 max pooling
_VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class _VGG(nn.Module):
    """Convolutions with batch norm and ReLU (``features``), then one linear layer."""

    def __init__(self, config, n_classes, dropout, augment):
        super().__init__()
        n_classes = check_head(n_classes, dropout)
        self.n_classes = n_classes
        self.augment = RandomCropFlip() if augment else None
        layers = []
        width = 3
        for v in config:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(width, v, 3, padding=1), nn.BatchNorm2d(v), nn.ReLU()]
                width = v
        self.features = nn.Sequential(*layers)
        output = nn.Linear(width, n_classes)
        self.classifier = nn.Sequential(nn.Dropout(dropout), output) if dropout > 0 else output
        init_conv_bn(self)
        nn.init.normal_(output.weight, 0.0, 0.01)
        nn.init.zeros_(output.bias)

    def forward(self, x):
        if self.augment is not None:
            x = self.augment(x)
        return self.classifier(torch.flatten(self.features(x), 1))

    def extra_repr(self):
        return f"n_classes={self.n_classes}"


def vgg11_bn(n_classes=10, dropout=0.0, augment=False):
    """VGG11 with batch norm for 32x32 images, the RelaxLoss paper's second CIFAR network.

    The eight 3x3 convolutions of configuration "A" (64, M, 128, M, 256, 256, M, 512,
    512, M, 512, 512, M; "M" a 2x2 max pooling), each followed by batch norm and ReLU,
    reduce a 32x32 image to 512 values; a single linear layer gives the logits (the
    large fully connected layers of the ImageNet VGG are removed, as in the reference).
    Module names (``features.0``, ``classifier``) and initialisation (He-normal
    convolutions with fan-out and zero bias, batch norm 1/0, linear weights
    ``N(0, 0.01^2)`` and zero bias) are the reference code's, so its checkpoints load.

    Parameters
    ----------
    n_classes : int, default=10
        Number of classes; the network returns one logit per class. A defense fills it in
        from the data.
    dropout : float, default=0.0
        When positive, a ``Dropout(dropout)`` right before the linear layer (then named
        ``classifier.1``), as the reference code's dropout defense does;
        :class:`~skmia.defenses.DropoutClassifier` sets it.
    augment : bool, default=False
        Apply :class:`RandomCropFlip` to the input in training mode (random crop with
        padding 4 and horizontal flip), never at prediction time. Off by default, as in
        the reference.

    Returns
    -------
    module : torch.nn.Module
        The network, taking ``(n, 3, 32, 32)`` float images and returning
        ``(n, n_classes)`` logits.

    Notes
    -----
    9,231,114 parameters for 10 classes (9,277,284 for 100).

    References
    ----------
    .. [1] K. Simonyan, A. Zisserman. "Very Deep Convolutional Networks for Large-Scale
       Image Recognition". ICLR 2015. arXiv:1409.1556.
    .. [2] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import torch
    >>> from skmia.nn import vgg11_bn
    >>> net = vgg11_bn(10)
    >>> sum(p.numel() for p in net.parameters())
    9231114
    >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    return _VGG(_VGG11, n_classes, dropout, augment)
