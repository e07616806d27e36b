{#- One row per rollup region containing a unit: its province, prefecture and county, each as a
    12-digit code (a rollup aggregates every unit whose code lies inside the region). -#}
{% macro region_rollup(code_column) -%}
    cross join lateral (
        values
        ('province', left({{ code_column }}, 2) || '0000000000'),
        ('prefecture', left({{ code_column }}, 4) || '00000000'),
        ('county', left({{ code_column }}, 6) || '000000')
    ) as rollup_region (region_level, region_code)
{%- endmacro %}
