{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='region_key',
        on_schema_change='fail',
        indexes=[{'columns': ['region_code', 'valid_from_year']}],
        post_hook="delete from {{ this }} as held where (select registry_changed from "
        ~ "{{ ref('int_build__registry_changed') }}) and not exists (select 1 from "
        ~ "{{ ref('int_region_spans') }} as spans where spans.region_key = held.region_key)",
    )
}}
-- SCD type 2 over the registry editions: one row per code and validity span. The key is derived
-- from (code, first edition) and so stays the same across rebuilds; -1 is the unknown member
-- that facts with a code missing from their edition (rule R01) join (int_region_spans).
-- Incremental: the registry changes only when it is reloaded. When it changed since this schema's
-- last complete build (int_build__registry_changed), a run writes the spans that differ from the
-- stored ones (new editions, renames, corrections) and its post-hook removes spans the registry no
-- longer has; otherwise it reads nothing, instead of rewriting, indexing and analysing 1.1 M rows.
-- depends_on: {{ ref('int_build__changed_forms') }}, {{ ref('int_build__registry_changed') }}
select spans.*
from {{ ref('int_region_spans') }} as spans
{%- if is_incremental() %}
    where
        (select registry_check.registry_changed from {{ ref('int_build__registry_changed') }} as registry_check)
        and not exists (
            select 1
            from {{ this }} as held
            where
                held.region_key = spans.region_key
                and row(held.*) is not distinct from row(spans.*)
        )
{%- endif %}
