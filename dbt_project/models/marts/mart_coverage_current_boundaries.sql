{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'platform_level']}]) }}
-- mart_coverage's observed figures with every survey year restated on the newest registry edition:
-- each county's partial sums go to its successor(s) in reference.division_crosswalk, split by the
-- crosswalk's weight, then roll up to the newest edition's prefectures and provinces. Unit codes
-- that are no county of their edition (R01) stay where their code puts them.
with county_rows as (
    select
        totals.survey_year,
        coalesce(crosswalk.successor_code, totals.unit_county_code) as county_code,
        totals.platform_level,
        coalesce(crosswalk.is_restated, false) as is_restated,
        {{ restated('totals.units_reported', 'crosswalk') }} as units_reported,
        {{ restated('totals.units_with_platform', 'crosswalk') }} as units_with_platform,
        {{ restated('totals.service_sites', 'crosswalk') }} as service_sites,
        {{ restated('totals.standardized_platforms', 'crosswalk') }} as standardized_platforms
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
        {{ exact_sum('county_rows.units_with_platform') }} as units_with_platform,
        {{ exact_sum('county_rows.service_sites') }} as service_sites,
        {{ exact_sum('county_rows.standardized_platforms') }} as standardized_platforms,
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
    rollups.units_with_platform,
    rollups.service_sites,
    rollups.standardized_platforms,
    {{ safe_ratio('rollups.units_with_platform', 'rollups.units_reported') }} as coverage_rate,
    {{ safe_ratio('rollups.standardized_platforms', 'rollups.units_with_platform') }} as standardized_rate,
    rollups.is_restated
from rollups
cross join {{ ref('int_registry_editions') }} as editions
left join {{ ref('int_rollup_regions__newest_edition') }} as regions
    on
        rollups.region_code = regions.region_code
        and rollups.region_level = regions.region_level
