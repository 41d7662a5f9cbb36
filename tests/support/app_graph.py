"""The apps' dependency order, and the imports and foreign keys that break it.

rankloop (the project core) < labeling < models_app < {rlhf, serving}: a module may import
from its own app and from the apps below it, never from one above or beside it. The composition
root (root URLs, ASGI, Celery and settings modules in rankloop/) names every app and is exempt.
"""
from __future__ import annotations

import ast
from pathlib import Path

LEVELS = {"rankloop": 0, "labeling": 1, "models_app": 2, "rlhf": 3, "serving": 3}
COMPOSITION_ROOT = {"rankloop/urls.py", "rankloop/asgi.py", "rankloop/api_urls.py", "rankloop/celery.py",
                    "rankloop/settings.py"}


def may_depend(app: str, on: str) -> bool:
    return app == on or LEVELS[on] < LEVELS[app]


def _modules(root: Path):
    for app in LEVELS:
        for path in sorted((root / app).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if "/migrations/" in relative or relative in COMPOSITION_ROOT:
                continue
            yield app, relative, ast.parse(path.read_text(encoding="utf-8"), filename=relative)


def _imported(tree, relative: str):
    """(line, dotted module) of every import in the module, inside functions too."""
    package = relative.rsplit("/", 1)[0].replace("/", ".")
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
                names = [module] if node.module else [f"{module}.{a.name}" for a in node.names]
            else:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                yield node.lineno, name


def upward_imports(root: Path) -> list[str]:
    """'path:line imports module' for each import that points up or across the order."""
    found = []
    for app, relative, tree in _modules(root):
        for line, module in _imported(tree, relative):
            top = module.split(".")[0]
            if top in LEVELS and not may_depend(app, top):
                found.append(f"{relative}:{line} imports {module}")
    return sorted(set(found))


def services_importing_tasks(root: Path) -> list[str]:
    """A services or actions module that imports an app's Celery tasks module, `<app>/tasks.py`
    (they enqueue by name). labeling/actions/tasks.py holds the comparison tasks' actions."""
    found = []
    for _app, relative, tree in _modules(root):
        name = Path(relative).stem
        if not (name == "services" or "/actions/" in relative):
            continue
        for line, module in _imported(tree, relative):
            parts = module.split(".")
            if len(parts) > 1 and parts[0] in LEVELS and parts[1] == "tasks":  # an app's Celery tasks
                found.append(f"{relative}:{line} imports {module}")
    return sorted(set(found))


def upward_relations() -> list[str]:
    """'app.Model.field -> app.Model' for each relation field of our models pointing up or across."""
    from django.apps import apps

    found = []
    for model in apps.get_models():
        app = model._meta.app_label
        if app not in LEVELS:
            continue
        for field in model._meta.get_fields(include_hidden=False):
            if not field.is_relation or field.auto_created or field.related_model is None:
                continue
            target = field.related_model._meta.app_label
            if target in LEVELS and not may_depend(app, target):
                found.append(f"{app}.{model.__name__}.{field.name} -> {target}.{field.related_model.__name__}")
    return sorted(found)
