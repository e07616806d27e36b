{#- For an incremental store in core (never swapped): the forms in force whose submission is not the
    one the store holds (an indexed anti-join on the store's key and submission). A full build takes
    every form in force. -#}
{% macro forms_not_stored() -%}
    select in_force.*
    from {{ ref('int_submissions__in_force') }} as in_force
    {%- if is_incremental() %}
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
