"""Torch modules used by skmia's defenses: the paper's MLP and its CIFAR networks."""

from ._mlp import MLP
from ._resnet import RandomCropFlip, resnet20
from ._vgg import vgg11_bn

__all__ = ["MLP", "RandomCropFlip", "resnet20", "vgg11_bn"]
