"""Downstream evaluation: does synthetic data make a better defect detector?

``metrics`` (pixel AUROC / AP / F1-max, image AUROC, AUPRO), ``segmenter`` (the small U-Net),
``report`` (JSON + PNG) and ``protocol`` (the whole run, behind ``anomaly-studio evaluate``);
MVTec-layout folders are read by :mod:`studio.datasets.mvtec`. Importing the package is cheap:
torch loads only with ``segmenter`` / ``protocol``.
"""
from __future__ import annotations

from typing import Any

__all__ = ["EvalSettings", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from studio.evaluation import protocol

        return getattr(protocol, name)
    raise AttributeError(f"module 'studio.evaluation' has no attribute {name!r}")
