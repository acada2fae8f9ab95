"""Torch modules used by skmia's defenses: the paper's MLP and its CIFAR networks, and
:class:`ModelBatches`, what a defense's ``training_objective`` is given."""

from ._batched_objective import ModelBatches
from ._mlp import MLP
from ._resnet import RandomCropFlip, resnet20
from ._vgg import vgg11_bn

__all__ = ["MLP", "ModelBatches", "RandomCropFlip", "resnet20", "vgg11_bn"]
