{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- For every survey year with a return: each county of the year's registry edition -> its successor(s)
-- in the newest edition, with the share of the county each takes (the boundary crosswalk).
with survey_years as (
    select distinct survey_year
    from {{ ref('stg_jcpt__submissions') }}
    where survey_year is not null
)

select
    survey_years.survey_year,
    crosswalk.county_code,
    crosswalk.successor_code,
    crosswalk.weight,
    crosswalk.reason,
    crosswalk.reason != 'unchanged' as is_restated
from survey_years
cross join {{ ref('int_registry_editions') }} as editions
inner join {{ ref('stg_reference__division_crosswalk') }} as crosswalk
    on crosswalk.edition = {{ edition_year('survey_years.survey_year', 'editions') }}
