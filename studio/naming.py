"""File and folder names made from user text (category, defect type), safe on every common filesystem.

``safe_name`` keeps the text readable (unicode letters and emoji stay) but guarantees a
single, non-empty path component: no separators, no ``.``/``..``, no control or
Windows-forbidden characters, no Windows device names (``CON``, ``NUL``, ``COM1`` ...),
no trailing dots or spaces, at most ``max_bytes`` bytes of UTF-8.
``NameAllocator`` maps distinct texts to distinct names even when they sanitise alike or
differ only by case (case-insensitive filesystems).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

#: Characters that are path separators or forbidden on Windows, replaced by "_".
_FORBIDDEN = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
#: Windows device names, reserved with or without an extension, in any case.
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "123456789¹²³"}
    | {f"LPT{i}" for i in "123456789¹²³"}
)
#: Most filesystems allow 255 bytes per component; stay well under to leave room for suffixes.
MAX_NAME_BYTES = 80


def safe_name(text: str | None, default: str = "unnamed", *, max_bytes: int = MAX_NAME_BYTES) -> str:
    """One safe, readable path component for ``text``; ``default`` when nothing usable is left."""
    name = unicodedata.normalize("NFC", text or "")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" or ch in "\u200d\ufe0f")
    name = _FORBIDDEN.sub("_", name)
    name = " ".join(name.split())  # collapse whitespace runs, trim
    name = name.strip(" .")  # Windows drops trailing dots/spaces; leading dots hide files
    name = _truncate_utf8(name, max_bytes).rstrip(" .")
    if not name or set(name) <= {"_", "."}:
        name = default
    if name.split(".")[0].upper().rstrip(" ") in _RESERVED:
        name = "_" + name
    return name


def _truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8 without splitting a character (or a ZWJ/emoji cluster tail)."""
    if len(text.encode("utf-8")) <= max_bytes:
        return text
    out = text.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
    return out.rstrip("\u200d\ufe0f")


class NameAllocator:
    """Stable, collision-free names for a set of texts (one namespace, e.g. the folders of one parent).

    Two different texts never share a name, also not case-insensitively: the second
    gets a short hash suffix. The same text always gets the same name.
    """

    def __init__(self, default: str = "unnamed", *, max_bytes: int = MAX_NAME_BYTES,
                 reserved: tuple[str, ...] = ()) -> None:
        self.default = default
        self.max_bytes = max_bytes
        self._by_text: dict[str, str] = {}
        #: Names no text may take (e.g. "good" next to defect folders in the MVTec layout).
        self._taken: set[str] = {r.casefold() for r in reserved}

    def __call__(self, text: str | None) -> str:
        key = text or ""
        if key in self._by_text:
            return self._by_text[key]
        name = safe_name(key, self.default, max_bytes=self.max_bytes)
        if name.casefold() in self._taken:
            suffix = "-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:8]
            name = safe_name(key, self.default, max_bytes=self.max_bytes - len(suffix)) + suffix
            n = 2
            while name.casefold() in self._taken:  # hash clash on top of a name clash: count
                name = f"{name}-{n}"
                n += 1
        self._taken.add(name.casefold())
        self._by_text[key] = name
        return name
