-- A small table, computed once per build: several models and tests read it, and as a view each
-- would scan the 1.1 M-row registry again.
{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- The names of the rollup regions (province, prefecture, county) in each survey year's registry
-- edition, for labelling the marts.
with survey_years as (
    select distinct survey_year
    from {{ ref('stg_jcpt__submissions') }}
    where survey_year is not null
)

select
    survey_years.survey_year,
    divisions.division_level as region_level,
    divisions.division_code as region_code,
    divisions.division_name as region_name
from survey_years
cross join {{ ref('int_registry_editions') }} as editions
inner join {{ ref('stg_reference__divisions') }} as divisions
    on
        {{ edition_year('survey_years.survey_year', 'editions') }}
        between divisions.first_year and divisions.last_year
where divisions.division_level in ('province', 'prefecture', 'county')
