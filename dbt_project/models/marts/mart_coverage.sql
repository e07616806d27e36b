{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- Coverage by survey year, region (province, prefecture, county) and platform level. Every region
-- with expected counties has a row for each level, so a region whose counties did not report shows
-- units_reported = 0 and counties_reported < counties_expected instead of vanishing. Sums over
-- units that all lack an indicator stay NULL (SUM ignores NULLs and is NULL over none).
with unit_totals as (
    select
        facts.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        facts.platform_level,
        count(*) as units_reported,
        sum(facts.has_platform) as units_with_platform,
        sum(facts.service_sites)::bigint as service_sites,
        sum(facts.standardized) as standardized_platforms
    from {{ ref('fct_platform_year') }} as facts
    {{ region_rollup('facts.region_code') }}
    group by facts.survey_year, rollup_region.region_level, rollup_region.region_code, facts.platform_level
),

expected as (
    select
        counties.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        count(*) as counties_expected
    from {{ ref('int_reporting_counties') }} as counties
    {{ region_rollup('counties.region_code') }}
    group by counties.survey_year, rollup_region.region_level, rollup_region.region_code
),

reported as (
    select
        in_force.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        in_force.platform_level,
        count(distinct in_force.county_code) as counties_reported
    from {{ ref('int_submissions__in_force') }} as in_force
    {{ region_rollup("in_force.county_code || '000000'") }}
    group by in_force.survey_year, rollup_region.region_level, rollup_region.region_code, in_force.platform_level
),

grid as (
    select
        survey_year,
        region_level,
        region_code,
        platform_level
    from unit_totals
    union
    select
        expected.survey_year,
        expected.region_level,
        expected.region_code,
        levels.platform_level
    from expected
    cross join {{ ref('dim_platform_level') }} as levels
)

select
    grid.survey_year,
    grid.region_code,
    grid.region_level,
    region_names.region_name,
    left(grid.region_code, 2) || '0000' as province_code,
    case when grid.region_level != 'province' then left(grid.region_code, 4) || '00' end as prefecture_code,
    case when grid.region_level = 'county' then left(grid.region_code, 6) end as county_code,
    grid.platform_level,
    coalesce(unit_totals.units_reported, 0) as units_reported,
    unit_totals.units_with_platform,
    unit_totals.service_sites,
    unit_totals.standardized_platforms,
    {{ safe_ratio('unit_totals.units_with_platform', 'unit_totals.units_reported') }} as coverage_rate,
    {{ safe_ratio('unit_totals.standardized_platforms', 'unit_totals.units_with_platform') }}
        as standardized_rate,
    coalesce(expected.counties_expected, 0) as counties_expected,
    coalesce(reported.counties_reported, 0) as counties_reported
from grid
left join unit_totals
    on
        grid.survey_year = unit_totals.survey_year
        and grid.region_code = unit_totals.region_code
        and grid.platform_level = unit_totals.platform_level
left join expected
    on
        grid.survey_year = expected.survey_year
        and grid.region_code = expected.region_code
left join reported
    on
        grid.survey_year = reported.survey_year
        and grid.region_code = reported.region_code
        and grid.platform_level = reported.platform_level
left join {{ ref('int_rollup_regions__by_year') }} as region_names
    on
        grid.survey_year = region_names.survey_year
        and grid.region_code = region_names.region_code
        and grid.region_level = region_names.region_level
