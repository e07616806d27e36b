{#- A county-level figure restated on the newest edition: its share (crosswalk weight). -#}
{% macro restated(column, crosswalk) -%}
    ({{ column }} * coalesce({{ crosswalk }}.weight, 1))
{%- endmacro %}
