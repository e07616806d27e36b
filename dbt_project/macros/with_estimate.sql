{#- Observed plus estimated: NULL only when both are unknown. -#}
{% macro with_estimate(observed, estimated) -%}
    case
        when {{ observed }} is null and {{ estimated }} is null then null
        else coalesce({{ observed }}, 0) + coalesce({{ estimated }}, 0)
    end
{%- endmacro %}
