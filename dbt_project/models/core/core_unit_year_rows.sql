{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['county_code', 'survey_year', 'form'],
        on_schema_change='sync_all_columns',
        pre_hook='{{ delete_rows_not_in_force() }}',
        indexes=[
            {'columns': ['county_code', 'survey_year', 'form', 'submission_id']},
            {'columns': ['survey_year', 'region_code']},
        ],
    )
}}
-- The unit rows of every return in force, one row per reporting unit and survey year: the
-- incremental fact store (schema core, never swapped). A run rewrites only the (county, survey
-- year, form) whose submission in force changed: a new revision replaces the rows of the old one
-- by delete+insert on that key. A form in force whose rows are not stored yet is picked up on the
-- next run, so a submission registered before its rows were loaded heals itself.
-- The three forms' rows in one shape: the columns come from the forms' spec (macro
-- unit_row_layout), a form's missing indicators are typed NULLs.
-- depends_on: {{ ref('jcpt_form_columns') }}, {{ ref('jcpt_form_versions') }}
-- its tests read the build's change set: {{ ref('int_build__changed_forms') }}
{%- set form_rows_models = [
    ref('stg_jcpt__county_rows'), ref('stg_jcpt__township_rows'), ref('stg_jcpt__village_rows')
] %}
{%- set layout = namespace(columns=[]) %}
{%- do unit_row_layout(layout, form_rows_models) %}

with changed as (
    {{ forms_not_stored() }}
),

unit_rows as (
    {%- for form_rows_model in form_rows_models %}
        {%- if not loop.first %}

            union all
        {% endif %}

        select
            in_force.county_code,
            in_force.survey_year,
            in_force.form,
            in_force.platform_level,
            in_force.form_version,
            form_rows.submission_id,
            form_rows.source_row,
            {%- for column in layout.columns %}
                {%- if form_rows_model.identifier in column.sources %}
            form_rows.{{ column.name }},
                {%- else %}
            null::{{ column.type }} as {{ column.name }},
                {%- endif %}
            {%- endfor %}
            form_rows.quality_flags
        from changed as in_force
        inner join {{ form_rows_model }} as form_rows
            on in_force.submission_id = form_rows.submission_id
    {%- endfor %}
)

select * from unit_rows
