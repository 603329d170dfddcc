"""Options shared by the page's events: queue slots, API visibility and progress display."""
from __future__ import annotations

#: Events that run a model share one queue slot per process (one model instance, one GPU).
MODEL_CONCURRENCY = {"concurrency_limit": 1, "concurrency_id": "model"}
#: UI glue events: callable (for the page) but not listed in the API docs.
UI = {"api_visibility": "undocumented"}
#: Quick UI glue: no spinner and no overlay on the outputs.
QUIET = {**UI, "show_progress": "hidden"}
#: Review decisions of all sessions run one at a time, in the order the keys were pressed.
REVIEW = {**QUIET, "concurrency_limit": 1, "concurrency_id": "review"}
#: Instant UI glue computed from the inputs alone (no queue, no spinner).
QUICK = {**QUIET, "queue": False}
