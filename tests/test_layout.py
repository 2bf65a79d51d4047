"""The layout rule of issue 17: statements are built only in a domain's repository (and the
database layer, app/core/), so every statement a domain runs is in one place."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
STATEMENT_NAMES = frozenset({"select", "update", "delete", "insert", "text", "func", "exists"})
STATEMENT_SOURCES = ("sqlalchemy", "sqlmodel")

# Modules outside a repository allowed to build statements, each for a reason of its own.
ALLOWED = {
    "app/articles/live.py": 'the "live article" rule, defined once as one expression for the '
    "ORM and the raw reads",
    "app/newsletter/outbox.py": "the delivery ledger (claims, leases, outcomes), named by "
    "the issue as its own module",
    "app/newsletter/recipients.py": "the recipient snapshot of an issue, named by the issue "
    "as its own module",
}


def _is_repository(relative: str) -> bool:
    parts = relative.split("/")
    return parts[-1] == "repository.py" or "repository" in parts[:-1]


def _statement_imports(path: Path) -> list[str]:
    """The statement builders a module imports from SQLAlchemy or SQLModel, as `module.name`."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.ImportFrom) or node.module is None:
            continue
        if node.module.split(".")[0] not in STATEMENT_SOURCES:
            continue
        found += [f"{node.module}.{a.name}" for a in node.names if a.name in STATEMENT_NAMES]
    return found


def offenders(root: Path = APP) -> dict[str, list[str]]:
    """Every module outside a repository and app/core/ that imports a statement builder."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root.parent).as_posix()
        if relative.startswith("app/core/") or _is_repository(relative):
            continue
        names = _statement_imports(path)
        if names:
            out[relative] = names
    return out


def test_statements_are_built_only_in_repositories() -> None:
    found = {module: names for module, names in offenders().items() if module not in ALLOWED}
    assert found == {}


def test_every_allowed_module_still_needs_its_exception() -> None:
    # An entry whose module stopped building statements (or moved) would hide a new one later.
    assert sorted(set(ALLOWED) - set(offenders())) == []


def test_the_check_sees_an_import_it_must_refuse(tmp_path: Path) -> None:
    module = tmp_path / "app" / "things" / "service.py"
    module.parent.mkdir(parents=True)
    module.write_text("from sqlmodel import col, select\nfrom sqlalchemy import func as f\n")
    kept = tmp_path / "app" / "things" / "repository" / "rows.py"
    kept.parent.mkdir()
    kept.write_text("from sqlalchemy import text\n")
    assert offenders(tmp_path / "app") == {
        "app/things/service.py": ["sqlmodel.select", "sqlalchemy.func"]
    }
