{{ config(materialized='table') }}
-- Whether the registry changed since the build schema's last complete build (build_registry):
-- dim_region then compares every span and the registry's tests run; otherwise neither scans the
-- 1.1 M rows. Always true on a full refresh or when the schema holds no complete build.
{%- set built = namespace(relation=none) %}
{%- do find_built_relation(built, 'build_registry') %}

select
    versions.registry_version,
    {%- if built.relation is none %}
        true as registry_changed
    {%- else %}
        versions.registry_version is distinct from (
            select built.registry_version from {{ built.relation }} as built
        ) as registry_changed
    {%- endif %}
from {{ ref('stg_reference__division_version') }} as versions
