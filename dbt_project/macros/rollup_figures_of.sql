{#- One row per figure of a rollup mart (long form): observed figures with obs_status, estimated
    ones with estimated_obs_status. -#}
{% macro rollup_figures_of(mart) -%}
    {%- set marts = {} -%}
    {%- do rollup_figures_into(marts) -%}
    {%- set spec = marts[mart] -%}
    select
        '{{ mart }}'::text as mart,
        rows_.survey_year,
        rows_.region_code,
        rows_.region_level,
        rows_.platform_level,
        {{ 'rows_.' ~ spec.funding_source if spec.funding_source else "''::text" }} as funding_source,
        figures.indicator,
        figures.value,
        figures.obs_status
    from {{ ref(mart) }} as rows_
    cross join lateral (
        values
        {%- for figure in spec.figures %}
        ('{{ figure }}', rows_.{{ figure }}::double precision, rows_.obs_status),
        {%- endfor %}
        {%- for figure in spec.estimated %}
        ('{{ figure }}', rows_.{{ figure }}::double precision, rows_.estimated_obs_status)
        {{- ',' if not loop.last }}
        {%- endfor %}
    ) as figures (indicator, value, obs_status)
{%- endmacro %}
