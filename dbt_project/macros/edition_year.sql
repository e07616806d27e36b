{#- The registry edition a survey year uses: years before the first edition use the first, years
    after the newest use the newest. The bounds come from the registry itself (int_registry_editions). -#}
{% macro edition_year(survey_year, editions) -%}
    least(greatest({{ survey_year }}, {{ editions }}.first_edition_year), {{ editions }}.last_edition_year)
{%- endmacro %}
