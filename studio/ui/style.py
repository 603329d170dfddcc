"""The page's CSS: one working screen at 1440×900, a full-width viewer on a phone.

``CSS`` goes to ``launch(css=...)`` (Gradio scopes it to the app's content); ``OUTER_CSS`` to the
page's ``<head>`` (the padding around the app, which scoped CSS cannot reach).
"""
from __future__ import annotations

OUTER_CSS = """
.gradio-container .main.fillable { padding-top: 6px !important; }
@media (max-width: 720px) {
  .gradio-container .main.fillable { padding-left: 4px !important; padding-right: 4px !important; }
  .gradio-container { padding-bottom: 64px !important; }  /* room for the decision bar fixed at the bottom */
}
"""

CSS = """
#title h2 { margin: 0; font-size: 1.15em; }
#status-line { font-size: 0.82em; padding: 3px 8px; border-radius: 6px; line-height: 1.35;
               background: var(--block-background-fill); border: 1px solid var(--border-color-primary); }
.hint, .hint p { color: var(--body-text-color-subdued); font-size: 0.85em; }
#message { height: 3.3em; overflow-y: auto; font-size: 0.9em; }  /* fixed: the buttons below never move */
#reference-row { align-items: center; gap: 6px; }
#reference-status { font-size: 0.86em; }
#will-store { min-height: 2.6em; }
#viewer-image img { object-fit: contain !important; width: 100%; height: 100%;
                    transform: translate(var(--pan-x, 0), var(--pan-y, 0)) scale(var(--zoom, 1));
                    transform-origin: center; cursor: zoom-in; }
#viewer-image .image-container, #viewer-image .image-frame { overflow: hidden; }
#candidate-strip .grid-container { grid-template-columns: repeat(6, minmax(0, 1fr)) !important; gap: 6px; }
#candidate-strip .gallery-item, #candidate-strip .thumbnail-item { width: 100% !important; height: auto !important;
                                                                  aspect-ratio: 1; }
#candidate-strip .thumbnail-item.selected { outline: 3px solid var(--color-accent); outline-offset: 1px; }
/* captions under the pictures, never over them (the defect is what a thumbnail is for) */
#candidate-strip .thumbnail-item, #curated-gallery .thumbnail-item { display: flex; flex-direction: column;
                                                                     aspect-ratio: auto !important; }
#candidate-strip .thumbnail-item img, #curated-gallery .thumbnail-item img { aspect-ratio: 1; height: auto;
                                                                             min-height: 0; flex: 0 0 auto; }
#candidate-strip .caption-label, #curated-gallery .caption-label {
  position: static; transform: none; max-width: 100%; margin: 0; padding: 1px 2px; border: none; border-radius: 0;
  background: none; box-shadow: none; text-align: center; font-size: 0.72em; line-height: 1.25; }
/* no queue open: the decisions are shown unavailable (the keys skip them too) */
#decision-panel:has(.no-queue) :is(#accept-btn, #reject-btn, #undo-btn, #prev-btn, #next-btn, #accept-all-btn,
                                   #reject-all-btn, #apply-labels-btn) { opacity: 0.45; pointer-events: none; }
#reference-thumb img { object-fit: contain; border-radius: 4px; }
#decision-panel button { min-width: 0; }
#decision-panel { gap: 8px; }
#details { font-size: 0.86em; line-height: 1.35; }
#view .wrap { gap: 4px; }
#view label { padding: 2px 8px !important; font-size: 0.85em; }
.tight { gap: 6px; }
.score { cursor: help; border-bottom: 1px dotted; }
#will-store { font-size: 0.88em; }
#keys-help { font-size: 0.8em; }
@media (max-width: 720px) {
  /* on a phone the decisions stay at the bottom of the screen, over the page */
  #decision-bar { position: fixed; left: 0; right: 0; bottom: 0; z-index: 50; margin: 0; padding: 6px 8px;
                  background: var(--background-fill-primary); box-shadow: 0 -2px 8px rgba(0, 0, 0, 0.25); }
  #decision-bar button { min-height: 44px; }
  /* the input tabs fit the phone's width (none folds into the "more tabs" menu) */
  .tab-container button { padding: 4px 7px !important; font-size: 0.8em !important; }
  #candidate-viewer, #viewer-image { padding: 0 !important; border: none !important; }
  #viewer-image { height: auto !important; }
}
"""
