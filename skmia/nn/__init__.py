"""Torch modules used by skmia's defenses: the paper's MLP (and, later, CIFAR networks)."""

from ._mlp import MLP

__all__ = ["MLP"]
