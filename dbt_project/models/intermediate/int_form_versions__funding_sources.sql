{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- The funding sources each form version reports (a row per source), plus `unallocated` for the
-- rest of the total when the version splits it into fewer sources than dim_funding_source knows
-- (v2014: central only; JCPT-3 v2014: none). reported_sources lists the version's own sources:
-- the rest is the total minus those (macro funding_amount).
with version_sources as (
    select
        columns_.form,
        columns_.form_version,
        sources.funding_source,
        sources.sort_order
    from {{ ref('jcpt_form_columns') }} as columns_
    inner join {{ ref('dim_funding_source') }} as sources
        on columns_.column_name = 'funding_' || sources.funding_source
),

version_splits as (
    select
        forms.form,
        versions.form_version,
        array_remove(array_agg(version_sources.funding_source order by version_sources.sort_order), null)
            as reported_sources,
        count(version_sources.funding_source) < (
            select count(*)
            from {{ ref('dim_funding_source') }} as known
            where known.funding_source != 'unallocated'
        ) as has_rest
    from {{ ref('jcpt_forms') }} as forms
    cross join {{ ref('jcpt_form_versions') }} as versions
    left join version_sources
        on
            forms.form = version_sources.form
            and versions.form_version = version_sources.form_version
    group by forms.form, versions.form_version
)

select
    version_splits.form,
    version_splits.form_version,
    version_sources.funding_source,
    version_splits.reported_sources
from version_splits
inner join version_sources
    on
        version_splits.form = version_sources.form
        and version_splits.form_version = version_sources.form_version

union all

select
    form,
    form_version,
    'unallocated' as funding_source,
    reported_sources
from version_splits
where has_rest
