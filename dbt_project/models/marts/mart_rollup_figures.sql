{{ config(indexes=[{'columns': ['mart', 'survey_year', 'region_code']}]) }}
-- Every figure of the rollup marts in long form (one row per figure), with its observation status:
-- what publish.py compares with the last vintage and appends, and what the SDMX export writes.
{%- set marts = {} -%}
{%- do rollup_figures_into(marts) -%}
{% for mart in marts %}
    {{ rollup_figures_of(mart) }}
    {{ 'union all' if not loop.last }}
{% endfor %}
