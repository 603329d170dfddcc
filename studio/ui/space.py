"""On a Hugging Face Space: serve at once on the weight-free engine, fetch the weights behind it, then switch.

:func:`start` runs in ``app.py`` when ``SPACE_ID`` is set (Spaces set it). A daemon thread fetches
SD-1.5 inpainting and BLIP-2 ITM into the hub cache (``hf_hub`` resumes an interrupted fetch on the
next start), writes its progress into the status line through the context, loads the
``anomalycontrol`` engine and makes it the default with :meth:`StudioContext.add_engine`: sessions stay
open and their next call uses the new engine. Offline, or when anything fails, the studio keeps the
weight-free engine and the status line says why, once.
"""
from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

from studio.errors import StudioError

if TYPE_CHECKING:
    from studio.ui.context import StudioContext

log = logging.getLogger(__name__)


#: The engine a Space fetches and switches to.
BACKGROUND_ENGINE = "anomalycontrol"
#: ``auto`` (default): fetch and switch only where a GPU (or ZeroGPU) can run the model; ``always``; ``never``.
FETCH_ENV = "ANOMALY_STUDIO_FETCH"


def fetch_policy() -> str:
    """Why not to fetch on this Space ("" = go ahead), from ``ANOMALY_STUDIO_FETCH`` and the hardware."""
    policy = os.environ.get(FETCH_ENV, "auto").strip().lower() or "auto"
    if policy == "never":
        return f"{FETCH_ENV}=never, so the AnomalyControl weights are not fetched."
    if policy == "always" or os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true"):
        return ""
    import torch

    if torch.cuda.is_available():
        return ""
    return (f"This Space has no GPU, so the AnomalyControl weights are not fetched (set {FETCH_ENV}=always "
            "to fetch them anyway: on a CPU each candidate takes minutes).")


def on_space() -> bool:
    """True when running on a Hugging Face Space (``SPACE_ID`` is set)."""
    return bool(os.environ.get("SPACE_ID", "").strip())


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


class BackgroundWeights:
    """Fetch the weights, load the engine and switch the studio to it; progress goes to the status line."""

    def __init__(self, ctx: StudioContext, weights: str | None = None) -> None:
        self.ctx = ctx
        self.weights = weights
        self.base_note = ctx.startup_note
        self._files: dict[str, tuple[int, int]] = {}
        self._bytes: dict[str, tuple[int, int]] = {}
        self._lock = threading.Lock()

    def note(self, text: str) -> None:
        """Show ``text`` in the status line (after the note the studio started with)."""
        self.ctx.startup_note = "  \n".join(t for t in (self.base_note, text) if t)

    def progress(self, what: str, done: int, total: int, unit: str) -> None:
        """A :data:`~studio.engines.anomalycontrol.hub.FetchProgress`: one line per model being fetched."""
        with self._lock:
            (self._bytes if unit == "bytes" else self._files)[what] = (done, total)
            parts = []
            for name, (files_done, files_total) in self._files.items():
                line = f"{name} {files_done}/{files_total} files"
                if name in self._bytes:
                    got, size = self._bytes[name]
                    line += f", {_size(got)} of {_size(size)}"
                parts.append(line)
        self.note("Fetching the AnomalyControl weights in the background (the weight-free engine serves "
                  "meanwhile): " + "; ".join(parts) + ".")

    def run(self) -> None:
        """The whole background job (the thread's target)."""
        from studio.engines import engine_class, get_engine
        from studio.publish import offline, offline_message

        wanted = engine_class(BACKGROUND_ENGINE)

        try:
            refused = fetch_policy()
            if refused:
                self.note(refused + " Running the weight-free engine.")
                return
            weights = self.weights
            if weights is None:
                if not wanted.available() and offline():
                    self.note(offline_message("fetched") + " Running the weight-free engine.")
                    return
                if not wanted.available():
                    self.note("Fetching the AnomalyControl weights in the background (the weight-free engine "
                              "serves meanwhile) ...")
                weights = wanted.fetch(progress=self.progress)
            self.note("AnomalyControl weights are here; loading the anomalycontrol engine ...")
            engine = get_engine(BACKGROUND_ENGINE, weights)
            self.ctx.add_engine(engine)
            self.note("")
            log.info("switched the studio to %s", engine.label)
        except StudioError as exc:
            self.note(f"{exc} Running the weight-free engine.")
            log.warning("background weights: %s", exc)
        except Exception as exc:  # the studio keeps serving whatever happens here
            log.exception("background weights failed")
            self.note(f"The AnomalyControl weights could not be loaded ({type(exc).__name__}); "
                      "running the weight-free engine.")

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="space-weights", daemon=True)
        thread.start()
        return thread


def defer_engine(requested: str | None) -> bool:
    """Whether to start on the weight-free engine and load AnomalyControl in the background (a Space, engine auto)."""
    return on_space() and (requested or "auto").strip() in ("", "auto")


def start(ctx: StudioContext, weights: str | None = None) -> threading.Thread:
    """Fetch (when needed), load and switch to the anomalycontrol engine in a daemon thread."""
    return BackgroundWeights(ctx, weights).start()
