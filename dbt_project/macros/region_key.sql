{#- dim_region's key: derived from (code, first edition of the span), so every rebuild gives a
    span the same key (12-digit code × 10^4 + year fits a bigint). -#}
{% macro region_key(division_code, first_year) -%}
    ({{ division_code }}::bigint * 10000 + {{ first_year }})
{%- endmacro %}
