"""Data: records, readers and images."""

from vlmlab.data.images import Image

__all__ = ["Image"]
