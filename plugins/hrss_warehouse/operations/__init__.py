"""Operating the warehouse: run metrics, status, backup and restore, rebuild from the archive."""
