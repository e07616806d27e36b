-- Run metrics: one row per DAG run, stage and mapped task, written by each stage task as it ends
-- (hrss_warehouse.ops). Idempotent: run by every bootstrap. dbt reads it into mart_pipeline_runs.
CREATE SCHEMA IF NOT EXISTS ops AUTHORIZATION hrss_loader;
REVOKE ALL ON SCHEMA ops FROM PUBLIC;

CREATE TABLE IF NOT EXISTS ops.stage_run (
    dag_id text NOT NULL,
    run_id text NOT NULL,
    stage text NOT NULL,
    map_index integer NOT NULL DEFAULT -1,
    try_number integer NOT NULL DEFAULT 1,
    outcome text NOT NULL CHECK (outcome IN ('success', 'failed')),
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    seconds numeric(12, 3) NOT NULL,
    files_in integer,
    accepted integer,
    quarantined integer,
    rows_in bigint,
    rows_out bigint,
    dbt_nodes_built integer,
    dbt_nodes_tested integer,
    error text,
    PRIMARY KEY (dag_id, run_id, stage, map_index)
);
ALTER TABLE ops.stage_run OWNER TO hrss_loader;
COMMENT ON TABLE ops.stage_run IS
    'Run metrics: one row per DAG run, stage and mapped task (map_index -1 when not mapped); a retry replaces its row.';

GRANT USAGE ON SCHEMA ops TO hrss_transformer;
GRANT SELECT ON ops.stage_run TO hrss_transformer;
