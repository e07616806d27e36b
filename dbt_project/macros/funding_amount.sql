{#- A unit's amount from one funding source (a row of int_form_versions__funding_sources): the
    reported column, or for `unallocated` the total minus the sources the version reports (unknown,
    NULL, when the total or one of them is unknown). -#}
{% macro funding_amount(units, sources) -%}
    case {{ sources }}.funding_source
        {%- for source in ['central', 'provincial', 'municipal', 'county'] %}
        when '{{ source }}' then {{ units }}.funding_{{ source }}_wan
        {%- endfor %}
        when 'unallocated'
            then {{ units }}.funding_total_wan
            {%- for source in ['central', 'provincial', 'municipal', 'county'] %}
            - case
                when '{{ source }}' = any({{ sources }}.reported_sources) then {{ units }}.funding_{{ source }}_wan
                else 0
            end
            {%- endfor %}
    end
{%- endmacro %}
