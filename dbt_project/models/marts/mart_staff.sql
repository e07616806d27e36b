{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- Staff by survey year, region and platform level. NULL totals mean no unit reported the indicator.
-- Rolled up from the returns' partial sums (core_county_year_totals); the estimates for missing
-- returns (int_county_year_estimates) only feed the estimated_* columns.
with county_rows as (
    select
        return_totals.survey_year,
        return_totals.unit_county_code as county_code,
        return_totals.platform_level,
        return_totals.units_reported,
        return_totals.units_with_platform as platforms,
        return_totals.staff_total,
        return_totals.coordinators,
        return_totals.persons_served,
        0 as counties_estimated,
        null::double precision as estimate_units_reported,
        null::double precision as estimate_platforms,
        null::double precision as estimate_staff_total,
        null::double precision as estimate_persons_served
    from {{ ref('core_county_year_totals') }} as return_totals

    union all

    select
        estimates.survey_year,
        estimates.county_code,
        estimates.platform_level,
        0 as units_reported,
        null as platforms,
        null as staff_total,
        null as coordinators,
        null as persons_served,
        1 as counties_estimated,
        estimates.units_reported as estimate_units_reported,
        estimates.units_with_platform as estimate_platforms,
        estimates.staff_total as estimate_staff_total,
        estimates.persons_served as estimate_persons_served
    from {{ ref('int_county_year_estimates') }} as estimates
),

totals as (
    select
        county_rows.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        county_rows.platform_level,
        sum(county_rows.units_reported)::bigint as units_reported,
        sum(county_rows.platforms)::bigint as platforms,
        sum(county_rows.staff_total)::bigint as staff_total,
        sum(county_rows.coordinators)::bigint as coordinators,
        sum(county_rows.persons_served)::bigint as persons_served,
        sum(county_rows.counties_estimated)::bigint as counties_estimated,
        {{ exact_sum('county_rows.estimate_units_reported') }} as estimate_units_reported,
        {{ exact_sum('county_rows.estimate_platforms') }} as estimate_platforms,
        {{ exact_sum('county_rows.estimate_staff_total') }} as estimate_staff_total,
        {{ exact_sum('county_rows.estimate_persons_served') }} as estimate_persons_served
    from county_rows
    {{ region_rollup("county_rows.county_code || '000000'") }}
    group by
        county_rows.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        county_rows.platform_level
),

figures as (
    select
        totals.survey_year,
        totals.region_code,
        totals.region_level,
        region_names.region_name,
        totals.platform_level,
        totals.units_reported,
        totals.platforms,
        totals.staff_total,
        {{ safe_ratio('totals.staff_total', 'totals.platforms') }} as staff_per_platform,
        totals.coordinators,
        totals.persons_served,
        totals.counties_estimated,
        totals.units_reported + coalesce(totals.estimate_units_reported, 0) as estimated_units_reported,
        {{ with_estimate('totals.platforms', 'totals.estimate_platforms') }} as estimated_platforms,
        {{ with_estimate('totals.staff_total', 'totals.estimate_staff_total') }} as estimated_staff_total,
        {{ with_estimate('totals.persons_served', 'totals.estimate_persons_served') }} as estimated_persons_served
    from totals
    left join {{ ref('int_rollup_regions__by_year') }} as region_names
        on
            totals.survey_year = region_names.survey_year
            and totals.region_code = region_names.region_code
            and totals.region_level = region_names.region_level
)

select
    figures.*,
    {{ obs_status('mart_staff', 'figures', 'figures.units_reported = 0') }} as obs_status,
    case
        when figures.counties_estimated > 0 then 'E'
        else {{ obs_status('mart_staff', 'figures', 'figures.units_reported = 0') }}
    end as estimated_obs_status
from figures
