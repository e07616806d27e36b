{#- A table of the build schema's last complete build (build_forms, build_registry) into
    found.relation, or none on a full refresh, when there is none, and while parsing. -#}
{% macro find_built_relation(found, identifier) -%}
    {%- if execute -%}
        {%- if not flags.FULL_REFRESH -%}
            {%- set found.relation = adapter.get_relation(
                database=target.database, schema=var('build_schema'), identifier=identifier) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
