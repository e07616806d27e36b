{#- Pre-hook of an incremental fact (inside its transaction): remove the rows of every form in the
    build's change set first, so that a form no longer in force (withdrawn) leaves the fact too;
    delete+insert then writes the forms that have rows. -#}
{% macro delete_changed_forms() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored_rows
    using {{ ref('int_build__changed_forms') }} as changed
    where
        stored_rows.county_code = changed.county_code
        and stored_rows.survey_year = changed.survey_year
        and stored_rows.form = changed.form
    {%- endif -%}
{%- endmacro %}
