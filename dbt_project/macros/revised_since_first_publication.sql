{#- True when a figure of the row (table alias `row`) was published before with another value. -#}
{% macro revised_since_first_publication(mart, row) -%}
    {%- set marts = {} -%}
    {%- do rollup_figures_into(marts) -%}
    {%- set spec = marts[mart] -%}
    exists (
        select 1
        from {{ ref('int_vintage__first_published') }} as first_published
        where
            first_published.mart = '{{ mart }}'
            and first_published.survey_year = {{ row }}.survey_year
            and first_published.region_code = {{ row }}.region_code
            and first_published.platform_level = {{ row }}.platform_level
            and first_published.funding_source = {{ row ~ '.' ~ spec.funding_source if spec.funding_source else "''" }}
            and first_published.value is distinct from (
                case first_published.indicator
                    {%- for figure in spec.figures %}
                    when '{{ figure }}' then {{ row }}.{{ figure }}::double precision
                    {%- endfor %}
                end
            )
            and first_published.indicator in ('{{ spec.figures | join("', '") }}')
    )
{%- endmacro %}
