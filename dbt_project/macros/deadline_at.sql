{#- The moment a survey year's return becomes late: 31 March of the next year, 24:00 local time. -#}
{% macro deadline_at(survey_year) -%}
    make_timestamptz({{ survey_year }} + 1, 4, 1, 0, 0, 0, '{{ var("deadline_time_zone") }}')
{%- endmacro %}
