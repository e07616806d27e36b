{#- obs_status of a row's observed figures: M no return in force, R a figure differs from its first
    publication, P the survey year is not closed yet, A otherwise. -#}
{% macro obs_status(mart, row, missing_when) -%}
    case
        when {{ missing_when }} then 'M'
        when {{ revised_since_first_publication(mart, row) }} then 'R'
        when now() < {{ closed_at(row ~ '.survey_year') }} then 'P'
        else 'A'
    end
{%- endmacro %}
