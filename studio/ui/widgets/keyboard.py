"""The page's browser-side behaviour: hotkeys and zoom/pan in the viewer (in ``<head>``).

The keys come from one table of :class:`Hotkey` s (the review panel declares its own next to its
buttons; :func:`keys_help` and :func:`head_html` are generated from it). Keys act whenever focus is
not in a text field and the Workstation tab is shown. Each key only clicks the button that does the
same (so a key and a click can never disagree), or picks the next option of a radio group; the
server's selection is the one truth. In the viewer the mouse wheel zooms at the cursor, dragging pans and a double
click resets; the zoom is kept from one candidate to the next, to compare the same spot. A large photo (shown
at under 2/3 of its size) opens zoomed on its defect (located by the candidate line's marker). On a
phone Generate and a decision scroll the viewer (with the candidate) into view.
"""
from __future__ import annotations

import base64
import json
from dataclasses import dataclass

from studio.ui.style import OUTER_CSS


@dataclass(frozen=True)
class Hotkey:
    """Keys that act on one element: each of ``keys`` (``KeyboardEvent.key`` values, one-character keys
    lower-case) clicks the button ``target`` (``{key}`` = the key pressed), or with ``cycles`` picks the next
    option of the radio group ``target``; ``shown`` and ``does`` are its line in the keys help."""

    keys: tuple[str, ...]
    target: str
    shown: str
    does: str
    cycles: bool = False


def keys_help(hotkeys: tuple[Hotkey, ...]) -> str:
    """The keys help line under the review panel, from the hotkey table."""
    keys = " · ".join(f"**{h.shown}** {h.does}" for h in hotkeys)
    return f"**Keys** (outside text fields): {keys} · wheel/drag zoom and pan, double-click resets"

_SCRIPT = """
<script>
(() => {
  const KEYS = %KEYS%;  // key -> [elem_id, cycles]
  // added from here: Gradio scopes <style> given to it, and this CSS is outside the app's content
  document.head.appendChild(Object.assign(document.createElement('style'), { textContent: atob('%OUTER_CSS%') }));
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  const click = (id) => {
    const el = document.getElementById(id);
    if (!el || el.disabled || getComputedStyle(el).pointerEvents === 'none') return false;  // shown unavailable
    (el.tagName === 'BUTTON' ? el : el.querySelector('button') || el).click();
    return true;
  };
  const cycle = (id) => {
    const radios = [...document.querySelectorAll('#' + id + ' input[type=radio]')];
    const at = radios.findIndex((r) => r.checked);
    if (radios.length) radios[(at + 1) % radios.length].click();
    return radios.length > 0;
  };
  document.addEventListener('keydown', (e) => {
    // Enter (in a one-line field) and Esc leave the field, so the next key is a hotkey, never typed into it
    if (typing(e.target) && (e.key === 'Escape' || (e.key === 'Enter' && e.target.tagName === 'INPUT'))) {
      e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey || e.repeat || typing(e.target)) return;
    if (!document.getElementById('candidate-strip')?.offsetParent) return;  // the Workstation tab is hidden
    const key = e.key.length === 1 ? e.key.toLowerCase() : e.key;
    const action = KEYS[key];
    if (action && (action[1] ? cycle(action[0]) : click(action[0]))) e.preventDefault();
  }, true);

  // each click on a review button (a key clicks it too) is numbered as it happens; its event carries the number
  // (press_stamp), so the server applies decisions in the order pressed (studio.ui.press_order)
  const pageLoad = Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
  let presses = 0;
  const stamps = {};
  document.addEventListener('click', (e) => {
    const button = e.target.closest && e.target.closest('.%PRESS%');
    if (button) (stamps[button.id] = stamps[button.id] || []).push(pageLoad + ':' + (++presses));
  }, true);
  window.studioStamp = (id, inputs) => [...inputs.slice(0, -1), (stamps[id] || []).shift() || ''];

  // on a phone the viewer is a screen away: after Generate or a decision bring the candidate into view
  document.addEventListener('click', (e) => {
    const decided = e.target.closest && e.target.closest('#accept-btn, #reject-btn, #undo-btn, #generate-btn');
    if (decided && window.matchMedia('(max-width: 767px)').matches) {
      document.getElementById('candidate-viewer')?.scrollIntoView({ block: 'start' });
    }
  });

  // zoom and pan: a transform on the viewer's <img>, kept in variables on the viewer block
  const zoom = { z: 1, x: 0, y: 0, auto: false };
  const apply = () => {
    const box = document.getElementById('viewer-image');
    if (!box) return;
    box.style.setProperty('--zoom', zoom.z);
    box.style.setProperty('--pan-x', zoom.x + 'px');
    box.style.setProperty('--pan-y', zoom.y + 'px');
  };
  const inViewer = (e) => e.target.closest && e.target.closest('#viewer-image') && e.target.tagName === 'IMG';
  document.addEventListener('wheel', (e) => {
    if (!inViewer(e)) return;
    e.preventDefault();
    // zoom at the cursor: the image point under it stays under it (the transform's origin is the centre)
    const frame = e.target.parentElement.getBoundingClientRect();
    const cx = e.clientX - (frame.left + frame.width / 2), cy = e.clientY - (frame.top + frame.height / 2);
    const z = Math.min(16, Math.max(1, zoom.z * (e.deltaY < 0 ? 1.25 : 0.8)));
    zoom.x = cx - (z / zoom.z) * (cx - zoom.x);
    zoom.y = cy - (z / zoom.z) * (cy - zoom.y);
    zoom.z = z;
    zoom.auto = false;
    if (zoom.z === 1) { zoom.x = 0; zoom.y = 0; }
    apply();
  }, { passive: false });
  let drag = null;
  document.addEventListener('mousedown', (e) => {
    if (inViewer(e) && zoom.z > 1) {
      drag = { x: e.clientX - zoom.x, y: e.clientY - zoom.y }; zoom.auto = false; e.preventDefault();
    }
  });
  document.addEventListener('mousemove', (e) => {
    if (drag) { zoom.x = e.clientX - drag.x; zoom.y = e.clientY - drag.y; apply(); }
  });
  document.addEventListener('mouseup', () => { drag = null; });
  document.addEventListener('dblclick', (e) => {
    if (inViewer(e)) { zoom.z = 1; zoom.x = 0; zoom.y = 0; zoom.auto = false; apply(); }
  });

  // a large photo (shown at under 2/3 of its size) opens zoomed on its defect, which the candidate line locates;
  // the next one does too, until you zoom or pan yourself (then your zoom stays, to compare the same spot)
  document.addEventListener('load', (e) => {
    const img = e.target;
    if (!(img instanceof HTMLImageElement) || !img.closest('#viewer-image') || (zoom.z !== 1 && !zoom.auto)) return;
    const box = (document.querySelector('#details .defect-box')?.title || '').split(' ').map(Number);
    const s = Math.min(img.offsetWidth / img.naturalWidth, img.offsetHeight / img.naturalHeight);
    if (box.length !== 4 || box.some(isNaN) || !(s < 2 / 3) || Math.max(box[2], box[3]) > 0.3) {
      if (zoom.auto) { zoom.z = 1; zoom.x = 0; zoom.y = 0; zoom.auto = false; apply(); }
      return;
    }
    zoom.z = Math.min(8, Math.max(1.5, 1 / (3 * Math.max(box[2], box[3]))));  // the defect fills a third of it
    zoom.x = -zoom.z * (box[0] - 0.5) * img.naturalWidth * s;
    zoom.y = -zoom.z * (box[1] - 0.5) * img.naturalHeight * s;
    zoom.auto = true;
    apply();
  }, true);
})();
</script>
"""


#: The class of the buttons whose clicks are numbered (wire their events with :func:`press_stamp`).
PRESS_CLASS = "press"


def press_stamp(elem_id: str) -> str:
    """The ``js=`` of the click event of button ``elem_id`` (of class :data:`PRESS_CLASS`): the event's last input
    becomes the click's stamp, ``<page load>:<press number>`` (:mod:`studio.ui.press_order`)."""
    return f"(...inputs) => window.studioStamp ? window.studioStamp({elem_id!r}, inputs) : inputs"


def head_html(hotkeys: tuple[Hotkey, ...]) -> str:
    """What ``launch(head=...)`` adds to the page: this script with ``hotkeys`` and the CSS outside the app's content."""
    table = {key: [h.target.replace("{key}", key), h.cycles] for h in hotkeys for key in h.keys}
    outer = base64.b64encode(OUTER_CSS.encode()).decode()  # Gradio rewrites anything in <head> that looks like CSS
    return (_SCRIPT.replace("%KEYS%", json.dumps(table)).replace("%OUTER_CSS%", outer)
            .replace("%PRESS%", PRESS_CLASS))
