"""ResNet20 of the RelaxLoss paper's CIFAR runs, and the CIFAR training augmentation."""

import math

import torch
from torch import nn
from torch.nn import functional as F

from ._head import check_head

__all__ = ["RandomCropFlip", "resnet20"]

# CIFAR's per-channel normalisation (the reference code's and skmia.datasets'): a padded
# pixel of the reference's RandomCrop is black *before* normalisation.
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2023, 0.1994, 0.2010)
CIFAR_NORMALISED_BLACK = tuple(-m / s for m, s in zip(_CIFAR_MEAN, _CIFAR_STD, strict=True))


class RandomCropFlip(nn.Module):
    """Random crop with zero padding and random horizontal flip, in training mode only.

    The reference code's optional CIFAR augmentation (``RandomCrop(32, padding=4)`` then
    ``RandomHorizontalFlip()``), applied to a batch of already normalised images, each
    record with its own crop offset and flip. In eval mode the module is the identity,
    so predictions and attack signals see the images unchanged. Random draws come from
    torch's global generator, which a defense's ``random_state`` seeds during ``fit``.

    Parameters
    ----------
    padding : int, default=4
        Pixels added on each side before a crop of the original size is taken.
    fill : float or sequence of float, default=CIFAR_NORMALISED_BLACK
        Value of the padded pixels, one per channel or one for all. The default is a
        black pixel after CIFAR normalisation, ``-mean / std`` per channel, so that the
        result equals the reference's crop of the raw image followed by normalisation.
    flip : bool, default=True
        Also flip each record left-right with probability 1/2.

    Examples
    --------
    >>> import torch
    >>> from skmia.nn import RandomCropFlip
    >>> augment = RandomCropFlip()
    >>> x = torch.randn(8, 3, 32, 32)
    >>> augment(x).shape
    torch.Size([8, 3, 32, 32])
    >>> torch.equal(augment.eval()(x), x)
    True
    """

    def __init__(self, padding=4, fill=CIFAR_NORMALISED_BLACK, flip=True):
        super().__init__()
        if int(padding) != padding or padding < 0:
            raise ValueError(f"padding must be a non-negative int, got {padding!r}.")
        self.padding = int(padding)
        self.fill = tuple(float(v) for v in fill) if hasattr(fill, "__len__") else float(fill)
        self.flip = bool(flip)

    def forward(self, x):
        """Augment a batch ``x`` of shape ``(n, C, H, W)`` in training mode."""
        if not self.training:
            return x
        if x.ndim != 4:
            raise ValueError(f"RandomCropFlip expects (n, C, H, W) images, got {tuple(x.shape)}.")
        n, c, h, w = x.shape
        p = self.padding
        if p:
            fill = torch.as_tensor(self.fill, dtype=x.dtype, device=x.device)
            if fill.ndim == 1 and len(fill) != c:
                raise ValueError(f"fill has {len(fill)} values for images of {c} channels.")
            padded = fill.reshape(-1, 1, 1).expand(c, h + 2 * p, w + 2 * p).repeat(n, 1, 1, 1)
            padded[:, :, p : p + h, p : p + w] = x
            top = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
            left = torch.randint(0, 2 * p + 1, (n,)).to(x.device)
            rows = (top[:, None] + torch.arange(h, device=x.device))[:, None, :, None]
            cols = (left[:, None] + torch.arange(w, device=x.device))[:, None, None, :]
            batch = torch.arange(n, device=x.device)[:, None, None, None]
            channel = torch.arange(c, device=x.device)[None, :, None, None]
            x = padded[batch, channel, rows, cols]
        if self.flip:
            flipped = torch.rand(n) < 0.5
            x = torch.where(flipped.to(x.device)[:, None, None, None], x.flip(-1), x)
        return x

    def extra_repr(self):
        return f"padding={self.padding}, flip={self.flip}"


def init_conv_bn(module):
    """The reference code's initialisation of convolutions and batch norms, in place.

    Convolution weights are drawn from ``N(0, 2 / (k_h * k_w * out_channels))`` (He
    initialisation, fan-out) and their biases zeroed; batch-norm scales are set to 1 and
    shifts to 0.
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
            nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _conv3x3(in_channels, out_channels, stride=1):
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class _BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm, plus the input (projected when needed)."""

    def __init__(self, in_channels, out_channels, stride=1):
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x if self.downsample is None else self.downsample(x)
        return F.relu(out + shortcut)


class _ResNet(nn.Module):
    """A CIFAR ResNet: a 3x3 stem, three stages of basic blocks, pooling, one linear layer."""

    def __init__(self, blocks_per_stage, n_classes, dropout, augment):
        super().__init__()
        n_classes = check_head(n_classes, dropout)
        self.n_classes = n_classes
        # parameter-free, so it adds no entry to state_dict
        self.augment = RandomCropFlip() if augment else None
        self.conv1 = _conv3x3(3, 16)
        self.bn1 = nn.BatchNorm2d(16)
        width = 16
        for i, stage_width in enumerate((16, 32, 64), start=1):
            stride = 1 if i == 1 else 2
            blocks = [_BasicBlock(width, stage_width, stride)]
            blocks += [_BasicBlock(stage_width, stage_width) for _ in range(blocks_per_stage - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            width = stage_width
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        output = nn.Linear(width, n_classes)  # torch's default initialisation, as there
        self.fc = nn.Sequential(nn.Dropout(dropout), output) if dropout > 0 else output
        init_conv_bn(self)

    def forward(self, x):
        if self.augment is not None:
            x = self.augment(x)
        x = F.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def extra_repr(self):
        return f"n_classes={self.n_classes}"


def resnet20(n_classes=10, dropout=0.0, augment=False):
    """ResNet20 for 32x32 images, the RelaxLoss paper's CIFAR network.

    A 3x3 convolution with 16 channels, then three stages of three basic blocks (two
    3x3 convolutions with batch norm and a residual connection) of widths 16, 32 and 64,
    the second and third stage halving the resolution; a 1x1 convolution with batch norm
    projects the shortcut where the shape changes. Global average pooling and one linear
    layer give the logits. Module names (``conv1``, ``layer2.0.downsample.0``, ``fc``)
    and initialisation (He-normal convolutions with fan-out, batch norm 1/0, torch's
    default for the linear layer) are the reference code's, so its checkpoints load.

    Parameters
    ----------
    n_classes : int, default=10
        Number of classes; the network returns one logit per class. A defense fills it in
        from the data.
    dropout : float, default=0.0
        When positive, a ``Dropout(dropout)`` right before the linear layer (then named
        ``fc.1``), as the reference code's dropout defense does;
        :class:`~skmia.defenses.DropoutClassifier` sets it.
    augment : bool, default=False
        Apply :class:`RandomCropFlip` to the input in training mode (the reference's
        optional ``--if_data_augmentation``): random crop with padding 4 and horizontal
        flip, never at prediction time. Off by default, as in the reference.

    Returns
    -------
    module : torch.nn.Module
        The network, taking ``(n, 3, 32, 32)`` float images (any size divisible by 4
        works) and returning ``(n, n_classes)`` logits.

    Notes
    -----
    272,474 parameters for 10 classes (278,324 for 100).

    References
    ----------
    .. [1] K. He, X. Zhang, S. Ren, J. Sun. "Deep Residual Learning for Image
       Recognition". CVPR 2016. arXiv:1512.03385.
    .. [2] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import torch
    >>> from skmia.nn import resnet20
    >>> net = resnet20(10)
    >>> sum(p.numel() for p in net.parameters())
    272474
    >>> net.eval()(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    """
    return _ResNet(3, n_classes, dropout, augment)
