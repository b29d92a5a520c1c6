"""Bounds on what unpacking a kit may produce (admin-configurable in ``[limits]``).

>>> lim = UnpackLimits(max_bytes=1 << 30)
>>> lim.max_bytes, lim.max_ratio, lim.max_entries
(1073741824, 1000, 1000000)

Exceeding one is a one-line :class:`~mlflow_plugin.errors.LimitExceededError` that names the
layer and the limit; nothing is written (unpacking stages, then moves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class UnpackLimits:
    """Total decompressed bytes of one unpack, decompressed/compressed ratio of a layer, tar entries
    in a layer. The ratio applies only past the first ``ratio_grace`` bytes of output, so small,
    highly compressible layers (a config of zeros) are not refused."""

    max_bytes: int = 1 << 40
    max_ratio: int = 1000
    max_entries: int = 1_000_000
    ratio_grace: int = 16 << 20

    @classmethod
    def from_config(cls, cfg: Any) -> UnpackLimits:
        """The admin's ``[limits]`` (``max_unpack_bytes``, ``max_unpack_ratio``, ``max_unpack_entries``)."""
        return cls(
            max_bytes=int(cfg.max_unpack_bytes),
            max_ratio=int(cfg.max_unpack_ratio),
            max_entries=int(cfg.max_unpack_entries),
        )


DEFAULT_LIMITS = UnpackLimits()
