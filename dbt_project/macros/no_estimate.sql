{#- The estimate columns of a branch of mart_coverage's county rows that holds no estimate. -#}
{% macro no_estimate() -%}
    0 as counties_estimated,
        null::double precision as estimate_units_reported,
        null::double precision as estimate_units_with_platform,
        null::double precision as estimate_service_sites,
        null::double precision as estimate_standardized_platforms
{%- endmacro %}
