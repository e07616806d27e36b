-- First against latest value of every published rollup figure: the first vintage it was published
-- in, and the value this build publishes (mart_rollup_figures).
with vintages as (
    select
        mart,
        survey_year,
        region_code,
        platform_level,
        funding_source,
        indicator,
        count(*) as vintages
    from {{ ref('stg_vintage__figures') }}
    group by mart, survey_year, region_code, platform_level, funding_source, indicator
)

select
    latest.mart,
    latest.survey_year,
    latest.region_code,
    latest.region_level,
    latest.platform_level,
    latest.funding_source,
    latest.indicator,
    coalesce(first_published.value, latest.value) as first_value,
    first_published.published_at as first_published_at,
    latest.value as latest_value,
    latest.obs_status as latest_obs_status,
    coalesce(vintages.vintages, 0) as vintages,
    coalesce(first_published.value is distinct from latest.value, false) as is_revised
from {{ ref('mart_rollup_figures') }} as latest
left join {{ ref('int_vintage__first_published') }} as first_published
    on
        latest.mart = first_published.mart
        and latest.survey_year = first_published.survey_year
        and latest.region_code = first_published.region_code
        and latest.platform_level = first_published.platform_level
        and latest.funding_source = first_published.funding_source
        and latest.indicator = first_published.indicator
left join vintages
    on
        latest.mart = vintages.mart
        and latest.survey_year = vintages.survey_year
        and latest.region_code = vintages.region_code
        and latest.platform_level = vintages.platform_level
        and latest.funding_source = vintages.funding_source
        and latest.indicator = vintages.indicator
