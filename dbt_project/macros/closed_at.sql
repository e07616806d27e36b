{#- The moment survey year Y is closed: its deadline plus the revision window. -#}
{% macro closed_at(survey_year) -%}
    ({{ deadline_at(survey_year) }} + make_interval(days => {{ var('revision_window_days') }}::integer))
{%- endmacro %}
