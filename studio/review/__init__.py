"""Reviewing candidates without the UI: pinned labels, near-duplicate categories, batches, stable keys.

``labels`` (what a queue stores, near-duplicate categories), ``batch`` (the batches of review jobs
and their progress, decisions on disk via :mod:`studio.batch.decisions`), ``hotkeys`` (the stable
1–9 defect-type map). Nothing here imports Gradio; the page's callbacks call these (the session's
queue itself is :mod:`studio.ui.review_queue`).
"""
