{#- Pre-hook of an incremental store in core (inside its transaction): remove every row whose
    submission is not the one in force for its form: forms no longer in force at all (a reprocess
    quarantined the only accepted submission) and superseded submissions. delete+insert alone would
    keep a superseded submission's rows when the new one has no row to insert. -#}
{% macro delete_rows_not_in_force() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored_rows
    where not exists (
        select 1
        from {{ ref('int_submissions__in_force') }} as in_force
        where
            stored_rows.county_code = in_force.county_code
            and stored_rows.survey_year = in_force.survey_year
            and stored_rows.form = in_force.form
            and stored_rows.submission_id = in_force.submission_id
    )
    {%- endif -%}
{%- endmacro %}
