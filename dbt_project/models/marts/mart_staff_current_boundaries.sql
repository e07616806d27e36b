{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- mart_staff's observed figures with every survey year restated on the newest registry edition
-- (as mart_coverage_current_boundaries: counties to their successors by the crosswalk's weights).
with county_rows as (
    select
        totals.survey_year,
        coalesce(crosswalk.successor_code, totals.unit_county_code) as county_code,
        totals.platform_level,
        coalesce(crosswalk.is_restated, false) as is_restated,
        {{ restated('totals.units_reported', 'crosswalk') }} as units_reported,
        {{ restated('totals.units_with_platform', 'crosswalk') }} as platforms,
        {{ restated('totals.staff_total', 'crosswalk') }} as staff_total,
        {{ restated('totals.coordinators', 'crosswalk') }} as coordinators,
        {{ restated('totals.persons_served', 'crosswalk') }} as persons_served
    from {{ ref('core_county_year_totals') }} as totals
    left join {{ ref('int_crosswalk__by_survey_year') }} as crosswalk
        on
            totals.survey_year = crosswalk.survey_year
            and totals.unit_county_code = crosswalk.county_code
),

rollups as (
    select
        county_rows.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        county_rows.platform_level,
        {{ exact_sum('county_rows.units_reported') }} as units_reported,
        {{ exact_sum('county_rows.platforms') }} as platforms,
        {{ exact_sum('county_rows.staff_total') }} as staff_total,
        {{ exact_sum('county_rows.coordinators') }} as coordinators,
        {{ exact_sum('county_rows.persons_served') }} as persons_served,
        bool_or(county_rows.is_restated) as is_restated
    from county_rows
    {{ region_rollup("county_rows.county_code || '000000'") }}
    group by county_rows.survey_year, rollup_region.region_level, rollup_region.region_code, county_rows.platform_level
)

select
    rollups.survey_year,
    editions.last_edition_year as boundary_edition,
    rollups.region_code,
    rollups.region_level,
    regions.region_name,
    rollups.platform_level,
    rollups.units_reported,
    rollups.platforms,
    rollups.staff_total,
    {{ safe_ratio('rollups.staff_total', 'rollups.platforms') }} as staff_per_platform,
    rollups.coordinators,
    rollups.persons_served,
    rollups.is_restated
from rollups
cross join {{ ref('int_registry_editions') }} as editions
left join {{ ref('int_rollup_regions__newest_edition') }} as regions
    on
        rollups.region_code = regions.region_code
        and rollups.region_level = regions.region_level
