-- What each stage of each DAG run took in and let out, and how long it took: the mapped tasks of a
-- stage summed. A build sees its own run up to the stages before dbt (the dbt build, publish and
-- reports of a run appear from the next build on).
select
    dag_id,
    run_id,
    stage,
    min(started_at) as started_at,
    max(finished_at) as finished_at,
    count(*)::integer as task_count,
    case when bool_and(outcome = 'success') then 'success' else 'failed' end as outcome,
    extract(epoch from max(finished_at) - min(started_at))::numeric(12, 3) as seconds,
    sum(seconds)::numeric(12, 3) as task_seconds,
    sum(files_in)::integer as files_in,
    sum(accepted)::integer as accepted,
    sum(quarantined)::integer as quarantined,
    sum(rows_in)::bigint as rows_in,
    sum(rows_out)::bigint as rows_out,
    sum(dbt_nodes_built)::integer as dbt_nodes_built,
    sum(dbt_nodes_tested)::integer as dbt_nodes_tested
from {{ ref('stg_ops__stage_runs') }}
group by dag_id, run_id, stage
