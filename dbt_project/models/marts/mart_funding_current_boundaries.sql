{{ config(indexes=[{'columns': ['region_level', 'survey_year', 'funding_source']}]) }}
-- mart_funding's observed amounts with every survey year restated on the newest registry edition
-- (as mart_coverage_current_boundaries: counties to their successors by the crosswalk's weights).
with county_rows as (
    select
        funding.survey_year,
        coalesce(crosswalk.successor_code, funding.unit_county_code) as county_code,
        funding.platform_level,
        funding.funding_source,
        coalesce(crosswalk.is_restated, false) as is_restated,
        {{ restated('funding.units_reported', 'crosswalk') }} as units_reported,
        {{ restated('funding.amount_wan', 'crosswalk') }} as amount_wan
    from {{ ref('core_county_year_funding') }} as funding
    left join {{ ref('int_crosswalk__by_survey_year') }} as crosswalk
        on
            funding.survey_year = crosswalk.survey_year
            and funding.unit_county_code = crosswalk.county_code
),

rollups as (
    select
        county_rows.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        county_rows.platform_level,
        county_rows.funding_source,
        {{ exact_sum('county_rows.units_reported') }} as units_reported,
        {{ exact_sum('county_rows.amount_wan') }} as amount_wan,
        bool_or(county_rows.is_restated) as is_restated
    from county_rows
    {{ region_rollup("county_rows.county_code || '000000'") }}
    group by
        county_rows.survey_year,
        rollup_region.region_level,
        rollup_region.region_code,
        county_rows.platform_level,
        county_rows.funding_source
)

select
    rollups.survey_year,
    editions.last_edition_year as boundary_edition,
    rollups.region_code,
    rollups.region_level,
    regions.region_name,
    rollups.platform_level,
    rollups.funding_source,
    rollups.units_reported,
    rollups.amount_wan,
    rollups.is_restated
from rollups
cross join {{ ref('int_registry_editions') }} as editions
left join {{ ref('int_rollup_regions__newest_edition') }} as regions
    on
        rollups.region_code = regions.region_code
        and rollups.region_level = regions.region_level
