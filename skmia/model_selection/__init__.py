"""Model selection for membership inference: the target/shadow protocol."""

from ._split import PROTOCOLS, MembershipPart, MembershipSplit, membership_split

__all__ = ["PROTOCOLS", "MembershipPart", "MembershipSplit", "membership_split"]
