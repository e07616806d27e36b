{#- A rate (double precision) that is NULL when the denominator is 0 or NULL. -#}
{% macro safe_ratio(numerator, denominator) -%}
    ({{ numerator }})::double precision / nullif({{ denominator }}, 0)
{%- endmacro %}
