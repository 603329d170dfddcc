"""Small, named things in ``studio/ui``: no function over 60 lines, every function says what it returns,
no Gradio import in the service, and no panel reaching into another panel's module at import time."""
from __future__ import annotations

import ast
from pathlib import Path

UI = Path(__file__).resolve().parents[2] / "studio" / "ui"
MAX_LINES = 60


def functions() -> list[tuple[str, ast.FunctionDef]]:
    found = []
    for path in sorted(UI.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                found.append((f"{path.relative_to(UI)}:{node.name}", node))
    return found


def module_imports(path: Path) -> set[str]:
    """Modules imported at import time (not under ``if TYPE_CHECKING:``, not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_no_function_over_sixty_lines():
    long = [(name, f.end_lineno - f.lineno + 1) for name, f in functions() if f.end_lineno - f.lineno + 1 > MAX_LINES]
    assert long == []


def test_every_function_says_what_it_returns():
    assert [name for name, f in functions() if f.returns is None] == []


def test_the_service_and_the_filters_import_no_gradio():
    for module in ("service.py", "filters.py", "context.py", "session.py", "review_queue.py", "zerogpu.py"):
        assert not any(m.split(".")[0] == "gradio" for m in module_imports(UI / module)), module


def test_panels_do_not_import_each_other():
    for path in sorted((UI / "panels").glob("*.py")):
        others = {m for m in module_imports(path) if m.startswith("studio.ui.panels")}
        assert others == set(), path.name
