{{
    config(
        incremental_strategy='delete+insert',
        unique_key=['county_code', 'survey_year', 'form'],
        on_schema_change='sync_all_columns',
        pre_hook='{{ delete_rows_not_in_force() }}',
        indexes=[{'columns': ['county_code', 'survey_year', 'form', 'submission_id']}],
    )
}}
-- The unit rows in force summed per return (county, survey year, form) and the county their codes
-- lie in: the building block of every rollup mart (a few rows per county instead of one per unit),
-- kept incrementally like the store, so the marts are rebuilt whole each run from a few thousand
-- rows. Sums over units that all lack an indicator stay NULL, and a sum of such partial sums too.
with changed as (
    {{ forms_not_stored() }}
)

select
    units.county_code,
    units.survey_year,
    units.form,
    units.submission_id,
    units.platform_level,
    left(units.region_code, 6) as unit_county_code,
    count(*) as units_reported,
    sum(units.has_platform)::bigint as units_with_platform,
    sum(units.standardized)::bigint as standardized_platforms,
    count(*) filter (where units.platform_mode = 1) as dedicated_offices,
    count(units.platform_mode) as platform_mode_known,
    sum(units.service_sites) as service_sites,
    sum(units.staff_total) as staff_total,
    sum(units.coordinators) as coordinators,
    sum(units.persons_served) as persons_served,
    sum(units.employers_served) as employers_served,
    sum(units.resident_population) as resident_population,
    sum(units.service_population) as service_population,
    sum(units.funding_total_wan) as funding_total_wan,
    sum(units.funding_central_wan) as funding_central_wan,
    sum(units.funding_provincial_wan) as funding_provincial_wan,
    sum(units.funding_municipal_wan) as funding_municipal_wan,
    sum(units.funding_county_wan) as funding_county_wan
from {{ ref('core_unit_year_rows') }} as units
inner join changed
    on
        units.county_code = changed.county_code
        and units.survey_year = changed.survey_year
        and units.form = changed.form
        and units.submission_id = changed.submission_id
group by
    units.county_code,
    units.survey_year,
    units.form,
    units.submission_id,
    units.platform_level,
    left(units.region_code, 6)
