{#- Schemas are exactly the configured names (staging, intermediate, core), not prefixed with the
    target schema as dbt's default does. `build` is the blue/green build schema, var('build_schema'):
    marts_build while building, marts when `dbt docs generate` describes what is published. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- elif custom_schema_name | trim == 'build' -%}
        {{ var('build_schema') }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
