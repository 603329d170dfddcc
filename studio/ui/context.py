"""What the studio shares between all browser sessions: which engines it offers, the curated store, folders.

One :class:`StudioContext` is built at start-up and handed to the page builder; callbacks reach
everything through it. The engines themselves are held by the registry (:mod:`studio.engines`, the
one place that holds loaded engines); the context names the ones this studio offers and its default.
Nothing here is per user.
"""
from __future__ import annotations

import logging
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from studio import config
from studio.engines import Engine, get_engine, loaded_engine, register
from studio.errors import InputError, StudioError
from studio.tempdirs import private_root

if TYPE_CHECKING:
    from studio.store import Store

log = logging.getLogger(__name__)

@dataclass
class StudioContext:
    """Engines, store and folders shared by every session of one studio process."""

    data_dir: Path
    #: The engines this studio offers, by registry name (default first when it started).
    engine_names: list[str]
    default_engine: str
    store: Store
    temp_root: Path
    startup_note: str = ""

    # ----------------------------------------------------------------- engines
    @property
    def engines(self) -> dict[str, Engine]:
        """name -> engine of every engine this studio offers (from the registry, at call time)."""
        return {name: loaded_engine(name) for name in list(self.engine_names)}

    def engine(self, name: str | None) -> Engine:
        """The engine called ``name`` (None or "" = the default one): resolve it once per call and pass it on."""
        key = (name or "").strip() or self.default_engine
        if key not in self.engine_names:
            raise InputError(f"The engine {key!r} is not loaded in this studio; choose one of: "
                             f"{', '.join(self.engine_names)}.")
        return loaded_engine(key)

    def engine_choices(self) -> list[tuple[str, str]]:
        """(label, value) pairs for the engine dropdown, default first."""
        names = [self.default_engine] + [n for n in self.engine_names if n != self.default_engine]
        return [(loaded_engine(n).label, n) for n in names]

    def attention_engine(self, preferred: str | None = None) -> Engine | None:
        """The engine that runs the ASEA preview: the chosen one if it can explain, else any loaded
        engine that can, else None (the page then shows the default engine's hint instead)."""
        chosen = self.engines.get((preferred or "").strip() or self.default_engine)
        if chosen is not None and chosen.can_explain:
            return chosen
        return next((e for e in self.engines.values() if e.can_explain), None)

    def explain_hint(self) -> str:
        """One line for where the attention preview would be: how to get an engine that explains."""
        return self.engine(None).hint or "No loaded engine can show attention maps."

    def status_markdown(self) -> str:
        """The status line: each loaded engine's own status (which says how to get more out of it).

        While a start-up note is shown (a fallback, a Space fetching its weights) the note says what
        is happening and how to get more, so the default engine is named by its label alone.
        """
        lines = []
        for _, name in self.engine_choices():
            engine = loaded_engine(name)
            try:
                text = engine.label if self.startup_note and name == self.default_engine else engine.status()
            except Exception:  # a status line must never break the page
                log.exception("engine.status() failed")
                text = engine.label
            lines.append(text if name == self.default_engine else f"Also loaded: {text}")
        if self.startup_note:
            lines.append(self.startup_note)
        return "  \n".join(lines)

    def add_engine(self, engine: Engine, *, default: bool = True) -> None:
        """Load ``engine`` into the running studio (e.g. once a Space's background fetch is done);
        with ``default`` the next call of every session uses it (callbacks read engines at call time)."""
        register(engine)
        if engine.name not in self.engine_names:
            self.engine_names = [*self.engine_names, engine.name]  # a new list: readers never see it change size
        if default:
            self.default_engine = engine.name

    # ------------------------------------------------------------------ folders
    def new_dir(self, kind: str) -> Path:
        """A fresh folder under the app's temporary root (``kind`` = sessions, exports, ...)."""
        path = self.temp_root / kind / uuid.uuid4().hex
        path.mkdir(parents=True, exist_ok=False)
        return path

    def prune(self, kind: str, max_age_s: float) -> None:
        """Delete entries of ``kind`` older than ``max_age_s`` (old exports, abandoned sessions)."""
        parent = self.temp_root / kind
        if not parent.is_dir():
            return
        cutoff = time.time() - max_age_s
        for child in parent.iterdir():
            try:
                if child.stat().st_mtime < cutoff:
                    if child.is_dir():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            except OSError:
                continue


def make_temp_root() -> Path:
    """A private folder for this process's session files and exports, removed when it ends."""
    return private_root("anomaly_studio_")


def load_engines(engine: str | None = "auto", weights: str | None = None) -> tuple[list[str], str]:
    """Load the start-up engine once (plus classic, always); returns (engine names, default first; note).

    An engine that cannot load (missing weights, ...) does not stop the studio: it falls back
    to the weight-free classic engine and the note (shown in the status line) says why.
    """
    names: list[str] = []
    note = ""
    requested = (engine or "auto").strip() or "auto"
    try:
        names.append(get_engine(requested, weights).name)
    except StudioError as exc:
        note = f"The {requested} engine could not load: {exc} Running the weight-free classic engine."
        log.warning(note)
    except Exception as exc:  # e.g. an optional dependency missing: the studio still runs
        log.exception("engine %s failed to load", requested)
        note = (f"The {requested} engine could not load ({type(exc).__name__}: {exc}). "
                "Running the weight-free classic engine.")
    fallback = get_engine("classic").name
    return names + [fallback] * (fallback not in names), note


def build_context(
    data_dir: str | Path | None = None,
    engine: str | None = "auto",
    weights: str | None = None,
    *,
    temp_root: Path | None = None,
    engines: dict[str, Engine] | None = None,
) -> StudioContext:
    """Everything the studio shares: engines loaded once (or ``engines`` made elsewhere, registered),
    the store of ``data_dir``, a temp root."""
    from studio.store import Store

    folder = config.data_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    if engines is None:
        names, note = load_engines(engine, weights)
    else:
        names, note = [register(e).name for e in engines.values()], ""
    return StudioContext(
        data_dir=folder,
        engine_names=names,
        default_engine=names[0],
        store=Store(folder),
        temp_root=temp_root or make_temp_root(),
        startup_note=note,
    )
