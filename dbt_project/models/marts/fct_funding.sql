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
-- One row per reporting unit, survey year and funding source the unit's form version reports.
-- A version that splits its total into fewer sources than dim_funding_source knows (v2014: central
-- only, JCPT-3 v2014: none) gets an `unallocated` row for the rest of the total
-- (int_form_versions__funding_sources, macro funding_amount). Sources a version does not report are
-- absent, never 0; an unknown amount stays NULL. Incremental like fct_platform_year.
-- depends_on: {{ ref('int_build__changed_forms') }}
with changed as (
    {{ changed_forms() }}
)

select
    facts.survey_year,
    facts.region_code,
    facts.region_key,
    facts.platform_level,
    facts.county_code,
    facts.province_code,
    facts.submission_id,
    facts.form,
    sources.funding_source,
    {{ funding_amount('facts', 'sources') }} as amount_wan
from {{ ref('fct_platform_year') }} as facts
inner join changed
    on
        facts.county_code = changed.county_code
        and facts.survey_year = changed.survey_year
        and facts.form = changed.form
inner join {{ ref('int_form_versions__funding_sources') }} as sources
    on
        facts.form = sources.form
        and facts.form_version = sources.form_version
