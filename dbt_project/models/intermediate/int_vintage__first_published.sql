{{
    config(
        materialized='table',
        indexes=[{'columns': ['mart', 'survey_year', 'region_code', 'platform_level', 'funding_source']}],
        post_hook='analyze {{ this }}',
    )
}}
-- A table with the rollup marts' key indexed: obs_status looks a row's figures up here once per row.
-- The first published value of every rollup figure ever published (obs_status R compares with it).
select distinct on (mart, survey_year, region_code, platform_level, funding_source, indicator)
    mart,
    survey_year,
    region_code,
    platform_level,
    funding_source,
    indicator,
    value,
    published_at
from {{ ref('stg_vintage__figures') }}
where not is_withdrawn
order by mart, survey_year, region_code, platform_level, funding_source, indicator, publication_id
