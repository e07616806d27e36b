{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- Staff by survey year, region and platform level. NULL totals mean no unit reported the indicator.
with totals as (
    select
        facts.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        facts.platform_level,
        count(*) as units_reported,
        sum(facts.has_platform) as platforms,
        sum(facts.staff_total)::bigint as staff_total,
        sum(facts.coordinators)::bigint as coordinators,
        sum(facts.persons_served)::bigint as persons_served
    from {{ ref('fct_platform_year') }} as facts
    {{ region_rollup('facts.region_code') }}
    group by facts.survey_year, rollup_region.region_level, rollup_region.region_code, facts.platform_level
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
