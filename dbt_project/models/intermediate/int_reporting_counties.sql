-- A small table, computed once per build: several models and tests read it, and as a view each
-- would scan the 1.1 M-row registry again.
{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- The counties expected to report each survey year that has at least one return: the county-level
-- units of the year's registry edition, development zones included, 市辖区 placeholders excluded.
with survey_years as (
    select distinct survey_year
    from {{ ref('stg_jcpt__submissions') }}
    where survey_year is not null
)

select
    survey_years.survey_year,
    divisions.county_code,
    divisions.division_code as region_code,
    divisions.division_name as county_name,
    divisions.province_code,
    divisions.prefecture_code,
    divisions.is_dev_zone
from survey_years
cross join {{ ref('int_registry_editions') }} as editions
inner join {{ ref('stg_reference__divisions') }} as divisions
    on
        {{ edition_year('survey_years.survey_year', 'editions') }}
        between divisions.first_year and divisions.last_year
where
    divisions.division_level = 'county'
    and not divisions.is_placeholder
