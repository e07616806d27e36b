{{
    config(
        incremental_strategy='delete+insert',
        unique_key=['county_code', 'survey_year', 'form'],
        on_schema_change='sync_all_columns',
        pre_hook='{{ delete_rows_not_in_force() }}',
        indexes=[{'columns': ['county_code', 'survey_year', 'form', 'submission_id']}],
    )
}}
-- The units' funding by source (as in fct_funding: the sources the form version reports plus
-- `unallocated`) summed per return (county, survey year, form) and the county the units' codes lie
-- in: what mart_funding rolls up. Incremental like the store.
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
    sources.funding_source,
    count(*) as units_reported,
    sum({{ funding_amount('units', 'sources') }}) as amount_wan
from {{ ref('core_unit_year_rows') }} as units
inner join changed
    on
        units.county_code = changed.county_code
        and units.survey_year = changed.survey_year
        and units.form = changed.form
        and units.submission_id = changed.submission_id
inner join {{ ref('int_form_versions__funding_sources') }} as sources
    on
        units.form = sources.form
        and units.form_version = sources.form_version
group by
    units.county_code,
    units.survey_year,
    units.form,
    units.submission_id,
    units.platform_level,
    left(units.region_code, 6),
    sources.funding_source
