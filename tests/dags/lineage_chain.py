"""Reading one run's OpenLineage events back from the file transport, as a graph of datasets."""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path

Dataset = tuple[str, str]  # (namespace, name)


def run_events(path: Path, run_id: str) -> list[dict]:
    """The COMPLETE events of the tasks of one Airflow run (their facets name the run)."""
    events = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("eventType") == "COMPLETE" and run_id in json.dumps(e.get("run", {}))]


def edges(events: list[dict]) -> dict[Dataset, set[Dataset]]:
    """Each input of a task leads to each of its outputs."""
    graph: dict[Dataset, set[Dataset]] = {}
    for event in events:
        for source in event.get("inputs", []):
            for target in event.get("outputs", []):
                graph.setdefault((source["namespace"], source["name"]), set()).add(
                    (target["namespace"], target["name"]))
    return graph


def chain(graph: dict[Dataset, set[Dataset]], start: Dataset, goal_name: str) -> list[Dataset] | None:
    """A shortest path of datasets from ``start`` to a dataset named ``goal_name``, if there is one."""
    came_from: dict[Dataset, Dataset | None] = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        if node[1] == goal_name:
            path = [node]
            while (prev := came_from[path[-1]]) is not None:
                path.append(prev)
            return path[::-1]
        for nxt in graph.get(node, ()):
            if nxt not in came_from:
                came_from[nxt] = node
                queue.append(nxt)
    return None
