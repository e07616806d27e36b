-- The build's completion marker: built last, after every other marts model and its tests passed
-- (dbt build skips it otherwise), so publish.py swaps only a complete, tested build. Once
-- published it tells BI users when the figures were built and from what.
-- depends_on: {{ ref('mart_pipeline_runs') }}
select
    '{{ invocation_id }}'::text as invocation_id,
    now() as built_at,
    '{{ dbt_version }}'::text as dbt_version,
    (select max(received_at) from {{ ref('mart_submissions') }}) as last_received_at,
    (select count(*) from {{ ref('dim_region') }}) as dim_region_rows,
    (select count(*) from {{ ref('dim_survey_year') }}) as dim_survey_year_rows,
    (select count(*) from {{ ref('dim_funding_source') }}) as dim_funding_source_rows,
    (select count(*) from {{ ref('dim_platform_level') }}) as dim_platform_level_rows,
    (select count(*) from {{ ref('fct_platform_year') }}) as fct_platform_year_rows,
    (select count(*) from {{ ref('fct_staffing') }}) as fct_staffing_rows,
    (select count(*) from {{ ref('fct_funding') }}) as fct_funding_rows,
    (select count(*) from {{ ref('mart_coverage') }}) as mart_coverage_rows,
    (select count(*) from {{ ref('mart_funding') }}) as mart_funding_rows,
    (select count(*) from {{ ref('mart_staff') }}) as mart_staff_rows,
    (select count(*) from {{ ref('mart_return_status') }}) as mart_return_status_rows,
    (select count(*) from {{ ref('mart_published_reconciliation') }}) as mart_published_reconciliation_rows,
    (select count(*) from {{ ref('mart_coverage_current_boundaries') }}) as mart_coverage_current_boundaries_rows,
    (select count(*) from {{ ref('mart_funding_current_boundaries') }}) as mart_funding_current_boundaries_rows,
    (select count(*) from {{ ref('mart_staff_current_boundaries') }}) as mart_staff_current_boundaries_rows,
    (select count(*) from {{ ref('mart_rollup_figures') }}) as mart_rollup_figures_rows,
    (select count(*) from {{ ref('mart_revisions') }}) as mart_revisions_rows,
    (select count(*) from {{ ref('mart_figure_vintages') }}) as mart_figure_vintages_rows
