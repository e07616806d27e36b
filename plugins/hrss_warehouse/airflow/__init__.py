"""What the DAG files import: task bodies, retry policy, alerts, lineage, the docs plugin."""
