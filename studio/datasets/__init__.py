"""On-disk dataset formats, one module each, reader and writer side by side (anomalib style).

``mvtec`` (read for evaluation and training, written by exports), ``coco`` and ``imagefolder``
(written by exports); ``sink`` is where a writer's files land (a staging folder or a zip).
"""
from __future__ import annotations

from typing import Any


def guidance_mode(metadata: dict[str, Any]) -> str:
    """How the reference steered a sample: ``sga``, ``ip-adapter`` or ``text`` (anomalycontrol's guidance modes),
    ``""`` for engines without one. Samples from before the modes existed read as ``sga``."""
    guidance = metadata.get("guidance")
    if isinstance(guidance, dict) and guidance.get("mode"):
        return str(guidance["mode"])
    return "sga" if isinstance(metadata.get("sga"), dict) else ""
