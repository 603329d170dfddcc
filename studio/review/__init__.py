"""Reviewing candidates without the UI: queues with pinned labels, safe keys, shared decisions, stable keys.

``labels`` (what a queue stores, near-duplicate categories), ``queue`` (one session's queue and
its key presses), ``generation`` (a queue over a fresh generation), ``batch`` (one queue across a
batch's review jobs, decisions on disk via :mod:`studio.batch.decisions`), ``hotkeys`` (the stable
1–9 defect-type map). Nothing here imports Gradio; the page's callbacks call these.
"""
