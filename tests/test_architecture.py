"""The layout docs/architecture.md draws, kept by the imports themselves.

The product package imports downwards only: facts (config, spec, contracts) ← services (files, db,
submissions, graceful, progress) ← stages (in flow order: a stage never imports a later one) ←
pipeline, conformance ← operations, local, airflow ← cli. Nothing in the product imports the
development tools (tools/, package hrss_tools), no two modules import each other even lazily, no
private name crosses a module boundary, the DAG files only wire (they import Airflow, Cosmos, the
package's airflow room and its facts in config), every setting is read by config, and raw.submission
is read and written by one module.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from hrss_warehouse.config import PROJECT_ROOT

PACKAGE = PROJECT_ROOT / "plugins" / "hrss_warehouse"
LAYERS = {  # top-level room or module -> its layer; a module imports from its own layer or below
    "config": 0, "spec": 0, "contracts": 0,
    "files": 1, "db": 1, "submissions": 1, "graceful": 1, "progress": 1,
    "stages": 2, "check": 2,
    "pipeline": 3, "conformance": 3,
    "operations": 4, "local": 4, "airflow": 4,
    "cli": 5,
}
STAGE_ORDER = {  # where each stage module sits in the flow: land → register → parse → check → load → …
    "stages.reference": 0, "stages.land": 1, "stages.register": 2, "stages.receipts_manifest": 2,
    "stages.parse": 3, "check": 4, "stages.load": 5, "stages.transform": 6, "stages.freshness": 6,
    "stages.publish": 7,
    "stages.export": 8, "stages.report": 8, "stages.summary": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> list[tuple[str, str, int]]:
    """(module, imported name, line) of every import in ``path``, module-level or inside a function."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "", node.lineno) for alias in node.names]
    return found


def _target(module: str, name: str) -> str:
    """The package module an import reaches: ``from hrss_warehouse.stages import land`` → stages.land."""
    full = f"{module}.{name}" if name else module
    short = full.removeprefix("hrss_warehouse.")
    return short if full in MODULES else module.removeprefix("hrss_warehouse.")


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for name, path in MODULES.items():
        graph[name] = {_target(module, imported) for module, imported, _ in _imports(path)
                       if module.startswith("hrss_warehouse")} - {name, "hrss_warehouse"}
    return graph


def _room(module: str) -> str:
    return module.split(".")[1] if module.count(".") >= 1 else module


def _stage_rank(module: str) -> int | None:
    short = module.removeprefix("hrss_warehouse.")
    return STAGE_ORDER.get("check" if short.startswith("check") else short)


def test_every_room_has_a_layer() -> None:
    rooms = {_room(name) for name in MODULES if name != "hrss_warehouse"}
    assert rooms == set(LAYERS), "a new room or top-level module needs its layer here and in architecture.md"


def test_no_product_module_imports_the_development_tools() -> None:
    product = [*PACKAGE.rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py"),
               *(PROJECT_ROOT / "plugins").glob("*.py")]
    offenders = [f"{path.relative_to(PROJECT_ROOT)}:{line}" for path in product
                 for module, _, line in _imports(path) if module.split(".")[0] == "hrss_tools"]
    assert not offenders


def test_imports_go_downwards_and_stages_never_reach_a_later_stage() -> None:
    wrong = []
    for name, targets in _graph().items():
        for target in targets:
            full = f"hrss_warehouse.{target}"
            if full not in MODULES and f"hrss_warehouse.{target.split('.')[0]}" not in MODULES:
                continue
            if LAYERS[_room(full)] > LAYERS[_room(name)]:
                wrong.append(f"{name} imports {target} (a higher layer)")
            mine, theirs = _stage_rank(name), _stage_rank(full)
            if mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{name} imports {target} (a later stage)")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle() -> None:
    graph = {name.removeprefix("hrss_warehouse."): targets for name, targets in _graph().items()
             if name != "hrss_warehouse"}
    # a room's facade (its __init__) re-exports its modules; they never import it back
    into_facade = [f"{name} imports its room's facade {target}" for name, targets in graph.items()
                   for target in targets if name.startswith(f"{target}.") and not name.endswith("__main__")]
    cycles = set()

    def visit(node: str, trail: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt == trail[0]:
                cycles.add(" -> ".join([*trail, nxt]))
            elif nxt not in trail and not trail[0].startswith(f"{nxt}.") and len(trail) < 12:
                visit(nxt, [*trail, nxt])

    for start in sorted(graph):
        visit(start, [start])
    assert not into_facade and not cycles, "\n".join(into_facade + sorted(cycles)[:10])


def test_no_private_name_crosses_a_module() -> None:
    offenders = []
    for name, path in MODULES.items():
        imported = {}
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("hrss_warehouse"):
                for alias in node.names:
                    if alias.name.startswith("_"):
                        offenders.append(f"{name} imports {node.module}.{alias.name}")
                    imported[alias.asname or alias.name] = alias.name
            elif (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                  and node.value.id in imported and node.attr.startswith("_")
                  and not node.attr.startswith("__")):
                offenders.append(f"{name} uses {node.value.id}.{node.attr}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("dag_file", sorted((PROJECT_ROOT / "dags").glob("*.py")), ids=lambda p: p.name)
def test_dag_files_only_wire(dag_file: Path) -> None:
    allowed = ("airflow", "cosmos", "hrss_warehouse.airflow", "hrss_warehouse.config", "__future__",
               "datetime", "pendulum")
    modules = {f"{module}.{name}" if module == "hrss_warehouse" else module
               for module, name, _ in _imports(dag_file)}
    assert sorted(m for m in modules if not m.startswith(allowed)) == []


def test_the_tools_stay_out_of_the_runtime_set_and_the_image() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    runtime = " ".join(project["project"]["dependencies"])
    tools = tomllib.loads((PROJECT_ROOT / "tools" / "pyproject.toml").read_text())["project"]
    assert "hrss-tools" not in runtime
    assert any(d.startswith("hrss-tools") for d in project["project"]["optional-dependencies"]["dev"])
    # what only the tools import is theirs to install
    for dependency in tools["dependencies"]:
        assert dependency.split("==")[0] not in runtime, dependency
    assert "tools" in (PROJECT_ROOT / ".dockerignore").read_text().split()


def test_every_setting_is_read_by_config_and_listed_in_the_readme() -> None:
    import re

    readme = (PROJECT_ROOT / "README.md").read_text()
    # variables the project sets for its own child processes (dbt's profile, Superset's config, one
    # Celery worker's name), not for a user to set
    internal = re.compile(r"HRSS_(DBT_|SUPERSET_[A-Z]+_PASSWORD|SUPERSET_BUNDLE|SUPERSET_METADATA_URI|"
                          r"BI_READER_DSN|WORKER_NAME|ALERTS\b)")
    code = [*PACKAGE.rglob("*.py"), *(PROJECT_ROOT / "tools").rglob("*.py"),
            *(PROJECT_ROOT / "dags").glob("*.py")]
    named = {m for path in code for m in re.findall(r"\bHRSS_[A-Z_]*[A-Z]\b", path.read_text())}
    assert sorted(v for v in named if not internal.match(v) and f"`{v}`" not in readme) == []
    # only config reads a setting from the environment (the fault hooks are the tests' own)
    readers = {path.relative_to(PROJECT_ROOT).as_posix() for path in code
               if re.search(r"environ(?:\.get)?[\[(]\"HRSS_(?!WORKER_NAME)", path.read_text())}
    assert readers == {"plugins/hrss_warehouse/config.py"}


def test_raw_submission_is_read_and_written_through_one_module() -> None:
    import re

    statement = re.compile(r"(?:FROM|INTO|UPDATE|JOIN)\s+raw\.submission\b(?!_)", re.IGNORECASE)
    users = {name for name, path in MODULES.items() if statement.search(path.read_text())}
    assert users == {"hrss_warehouse.submissions"}


# Runtime dependencies the product uses without importing them, and how.
USED_WITHOUT_IMPORT = {
    "apache-airflow-providers-postgres": "the `postgres` type of the Airflow connection hrss_warehouse",
    "apache-airflow-providers-standard": "the Python operator behind every @task",
    "apache-airflow-providers-celery": "the CeleryExecutor of `make airflow EXECUTOR=celery`",
    "redis": "the Celery broker's client",
    "apache-airflow-providers-openlineage": "Airflow's OpenLineage listener, configured by airflow_env",
    "dbt-core": "the `dbt` command transform and Cosmos run",
    "dbt-postgres": "dbt's PostgreSQL adapter",
}
IMPORT_NAMES = {"apache-airflow": "airflow", "astronomer-cosmos": "cosmos", "pyyaml": "yaml",
                "apache-airflow-providers-smtp": "airflow.providers.smtp"}


def test_every_runtime_dependency_is_used_by_the_product() -> None:
    import re

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    code = [*PACKAGE.rglob("*.py"), *(PROJECT_ROOT / "dags").glob("*.py")]
    imported = {module.split(".")[0] if not module.startswith("airflow.providers") else module
                for path in code for module, _, _ in _imports(path)}
    imported |= {".".join(m.split(".")[:3]) for m in imported if m.startswith("airflow.providers")}
    unused = []
    for requirement in project["dependencies"]:
        name = re.split(r"[=<>\[ ]", requirement)[0]
        module = IMPORT_NAMES.get(name, name.replace("-", "_"))
        if module not in imported and name not in USED_WITHOUT_IMPORT:
            unused.append(name)
    assert unused == [], "a runtime dependency nothing in the product uses (move it to the tools or drop it)"
