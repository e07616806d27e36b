{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- Staff by survey year, region and platform level. NULL totals mean no unit reported the indicator.
-- Rolled up from the returns' partial sums (int_county_year_totals).
with totals as (
    select
        return_totals.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        return_totals.platform_level,
        sum(return_totals.units_reported)::bigint as units_reported,
        sum(return_totals.units_with_platform)::bigint as platforms,
        sum(return_totals.staff_total)::bigint as staff_total,
        sum(return_totals.coordinators)::bigint as coordinators,
        sum(return_totals.persons_served)::bigint as persons_served
    from {{ ref('int_county_year_totals') }} as return_totals
    {{ region_rollup("return_totals.unit_county_code || '000000'") }}
    group by
        return_totals.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        return_totals.platform_level
)

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
    totals.persons_served
from totals
left join {{ ref('int_rollup_regions__by_year') }} as region_names
    on
        totals.survey_year = region_names.survey_year
        and totals.region_code = region_names.region_code
        and totals.region_level = region_names.region_level
