{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- Coverage by survey year, region (province, prefecture, county) and platform level. Every region
-- with expected counties has a row for each level, so a region whose counties did not report shows
-- units_reported = 0 and counties_reported < counties_expected instead of vanishing. Sums over
-- units that all lack an indicator stay NULL (SUM ignores NULLs and is NULL over none).
-- One aggregate over county-level rows (units' partial sums, expected counties, counties in
-- force), rolled up to the three region levels: a few thousand rows, no join of aggregates.
with county_rows as (
    select
        totals.survey_year,
        totals.unit_county_code as county_code,
        totals.platform_level,
        totals.units_reported,
        totals.units_with_platform,
        totals.service_sites,
        totals.standardized_platforms,
        0 as counties_expected,
        0 as counties_reported,
        {{ no_estimate() }}
    from {{ ref('core_county_year_totals') }} as totals

    union all

    -- every expected county counts once at each platform level
    select
        counties.survey_year,
        counties.county_code,
        levels.platform_level,
        0 as units_reported,
        null as units_with_platform,
        null as service_sites,
        null as standardized_platforms,
        1 as counties_expected,
        0 as counties_reported,
        {{ no_estimate() }}
    from {{ ref('int_reporting_counties') }} as counties
    cross join {{ ref('dim_platform_level') }} as levels

    union all

    -- a county whose return of the level's form is in force (one per county, year and form)
    select
        in_force.survey_year,
        in_force.county_code,
        in_force.platform_level,
        0 as units_reported,
        null as units_with_platform,
        null as service_sites,
        null as standardized_platforms,
        0 as counties_expected,
        1 as counties_reported,
        {{ no_estimate() }}
    from {{ ref('int_submissions__in_force') }} as in_force

    union all

    -- estimates for the missing returns, kept apart from the observed figures
    select
        estimates.survey_year,
        estimates.county_code,
        estimates.platform_level,
        0 as units_reported,
        null as units_with_platform,
        null as service_sites,
        null as standardized_platforms,
        0 as counties_expected,
        0 as counties_reported,
        1 as counties_estimated,
        estimates.units_reported as estimate_units_reported,
        estimates.units_with_platform as estimate_units_with_platform,
        estimates.service_sites as estimate_service_sites,
        estimates.standardized_platforms as estimate_standardized_platforms
    from {{ ref('int_county_year_estimates') }} as estimates
),

rollups as (
    select
        county_rows.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        county_rows.platform_level,
        sum(county_rows.units_reported)::bigint as units_reported,
        sum(county_rows.units_with_platform)::bigint as units_with_platform,
        sum(county_rows.service_sites)::bigint as service_sites,
        sum(county_rows.standardized_platforms)::bigint as standardized_platforms,
        sum(county_rows.counties_expected)::bigint as counties_expected,
        sum(county_rows.counties_reported)::bigint as counties_reported,
        sum(county_rows.counties_estimated)::bigint as counties_estimated,
        {{ exact_sum('county_rows.estimate_units_reported') }} as estimate_units_reported,
        {{ exact_sum('county_rows.estimate_units_with_platform') }} as estimate_units_with_platform,
        {{ exact_sum('county_rows.estimate_service_sites') }} as estimate_service_sites,
        {{ exact_sum('county_rows.estimate_standardized_platforms') }} as estimate_standardized_platforms
    from county_rows
    {{ region_rollup("county_rows.county_code || '000000'") }}
    group by county_rows.survey_year, rollup_region.region_level, rollup_region.region_code, county_rows.platform_level
    -- a region has a row when units reported in it or counties are expected there
    having sum(county_rows.units_reported) > 0 or sum(county_rows.counties_expected) > 0
),

figures as (
    select
        rollups.survey_year,
        rollups.region_code,
        rollups.region_level,
        region_names.region_name,
        left(rollups.region_code, 2) || '0000' as province_code,
        case when rollups.region_level != 'province' then left(rollups.region_code, 4) || '00' end as prefecture_code,
        case when rollups.region_level = 'county' then left(rollups.region_code, 6) end as county_code,
        rollups.platform_level,
        rollups.units_reported,
        rollups.units_with_platform,
        rollups.service_sites,
        rollups.standardized_platforms,
        {{ safe_ratio('rollups.units_with_platform', 'rollups.units_reported') }} as coverage_rate,
        {{ safe_ratio('rollups.standardized_platforms', 'rollups.units_with_platform') }} as standardized_rate,
        rollups.counties_expected,
        rollups.counties_reported,
        rollups.counties_estimated,
        rollups.units_reported + coalesce(rollups.estimate_units_reported, 0) as estimated_units_reported,
        {{ with_estimate('rollups.units_with_platform', 'rollups.estimate_units_with_platform') }}
            as estimated_units_with_platform,
        {{ with_estimate('rollups.service_sites', 'rollups.estimate_service_sites') }} as estimated_service_sites,
        {{ with_estimate('rollups.standardized_platforms', 'rollups.estimate_standardized_platforms') }}
            as estimated_standardized_platforms
    from rollups
    left join {{ ref('int_rollup_regions__by_year') }} as region_names
        on
            rollups.survey_year = region_names.survey_year
            and rollups.region_code = region_names.region_code
            and rollups.region_level = region_names.region_level
)

{#- M: neither a county's return in force nor a unit reported in the region -#}
{%- set no_return = 'figures.counties_reported = 0 and figures.units_reported = 0' %}
select
    figures.*,
    {{ safe_ratio('figures.estimated_units_with_platform', 'figures.estimated_units_reported') }}
        as estimated_coverage_rate,
    {{ obs_status('mart_coverage', 'figures', no_return) }} as obs_status,
    case
        when figures.counties_estimated > 0 then 'E'
        else {{ obs_status('mart_coverage', 'figures', no_return) }}
    end as estimated_obs_status
from figures
