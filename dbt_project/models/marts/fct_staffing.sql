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
        ],
    )
}}
-- One row per reporting unit and survey year: the staff breakdown of the return in force.
-- Breakdowns a form version lacks are NULL. Incremental like fct_platform_year.
-- depends_on: {{ ref('int_build__changed_forms') }}
with changed as (
    {{ changed_forms() }}
)

select
    units.survey_year,
    units.region_code,
    facts.region_key,
    units.platform_level,
    units.county_code,
    facts.province_code,
    units.form,
    units.submission_id,
    units.staff_total,
    units.staff_establishment,
    units.staff_welfare,
    units.staff_other,
    units.staff_fulltime,
    units.staff_parttime,
    units.coordinators,
    units.staff_trained,
    units.staff_certified
from {{ ref('core_unit_year_rows') }} as units
inner join changed
    on
        units.county_code = changed.county_code
        and units.survey_year = changed.survey_year
        and units.form = changed.form
inner join {{ ref('fct_platform_year') }} as facts
    on
        units.survey_year = facts.survey_year
        and units.region_code = facts.region_code
