"""Validation shared by skmia's networks."""


def check_head(n_classes, dropout):
    """Return ``n_classes`` as an int after checking it and the dropout rate."""
    n_classes = int(n_classes)
    if n_classes < 1:
        raise ValueError(f"n_classes must be a positive int, got {n_classes}.")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}.")
    return n_classes
