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
