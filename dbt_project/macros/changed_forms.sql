{#- For an incremental fact in the build schema: the (county, survey year, form) whose rows this run
    rewrites: the build's change set (int_build__changed_forms: changed since the schema's last
    complete build, with the next survey year of each) plus any form in force whose submission is not
    the one this table holds (a safety net compared with the table's own content). A full build
    takes every form in force. -#}
{% macro changed_forms() -%}
    {%- if not is_incremental() %}
    select
        county_code,
        survey_year,
        form
    from {{ ref('int_submissions__in_force') }}
    {%- else %}
    select
        county_code,
        survey_year,
        form
    from {{ ref('int_build__changed_forms') }}
    union
    select
        in_force.county_code,
        in_force.survey_year,
        in_force.form
    from {{ ref('int_submissions__in_force') }} as in_force
    where not exists (
        select 1
        from {{ this }} as stored_rows
        where
            stored_rows.county_code = in_force.county_code
            and stored_rows.survey_year = in_force.survey_year
            and stored_rows.form = in_force.form
            and stored_rows.submission_id = in_force.submission_id
    )
    {%- endif %}
{%- endmacro %}
