{{ config(materialized='view') }}
-- Every vintage of every published rollup figure, valid from its publication until the next
-- publication that changed or withdrew it. "As published on D": published_at <= D and
-- (superseded_at is null or superseded_at > D), withdrawn rows excluded. A view, so it shows the
-- vintages up to the latest publish whichever build is published.
select
    publication_id,
    published_at,
    lead(published_at) over (
        partition by mart, survey_year, region_code, platform_level, funding_source, indicator
        order by publication_id
    ) as superseded_at,
    mart,
    survey_year,
    region_code,
    platform_level,
    funding_source,
    indicator,
    value,
    obs_status,
    is_withdrawn
from {{ ref('stg_vintage__figures') }}
