{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['county_code', 'survey_year', 'form'],
        on_schema_change='fail',
        pre_hook='{{ delete_changed_forms() }}',
        indexes=[
            {'columns': ['county_code', 'survey_year', 'form', 'submission_id']},
            {'columns': ['region_key']},
            {'columns': ['survey_year', 'province_code', 'platform_level']},
        ],
    )
}}
-- One row per reporting unit and survey year, from the submission in force: the core store with its
-- region span and the row-level soft flags (those of the check stage, plus H01 over the returns in
-- force and R01 for a code the registry edition lacks). Incremental in the build schema: only the
-- forms whose submission in force changed since this table was built are rewritten (README).
-- depends_on: {{ ref('int_build__changed_forms') }}
with changed as (
    {{ changed_forms() }}
)

select
    units.survey_year,
    units.region_code,
    coalesce(regions.region_key, -1) as region_key,
    units.platform_level,
    units.county_code,
    left(units.county_code, 4) || '00' as prefecture_code,
    left(units.county_code, 2) || '0000' as province_code,
    units.submission_id,
    units.form,
    units.form_version,
    units.unit_name,
    units.has_platform,
    units.standardized,
    units.platform_mode,
    units.service_sites,
    units.staff_total,
    units.coordinators,
    units.persons_served,
    units.employers_served,
    units.resident_population,
    units.service_population,
    units.funding_total_wan,
    units.funding_central_wan,
    units.funding_provincial_wan,
    units.funding_municipal_wan,
    units.funding_county_wan,
    history.previous_staff_total,
    case
        when history.h01_fires or regions.region_key is null
            then array(
                    select distinct flags.flag
                    from
                        unnest(
                            units.quality_flags
                            || case when history.h01_fires then array['H01'] else array[]::text [] end
                            || case when regions.region_key is null then array['R01'] else array[]::text [] end
                        ) as flags (flag)
                    order by flags.flag
                )
        else units.quality_flags
    end as quality_flags
from {{ ref('core_unit_year_rows') }} as units
inner join changed
    on
        units.county_code = changed.county_code
        and units.survey_year = changed.survey_year
        and units.form = changed.form
cross join {{ ref('int_registry_editions') }} as editions
inner join {{ ref('int_unit_years__history') }} as history
    on
        units.survey_year = history.survey_year
        and units.region_code = history.region_code
left join {{ ref('dim_region') }} as regions
    on
        units.region_code = regions.region_code
        and units.platform_level = regions.division_level
        and {{ edition_year('units.survey_year', 'editions') }}
        between regions.valid_from_year and coalesce(regions.valid_to_year, editions.last_edition_year)
