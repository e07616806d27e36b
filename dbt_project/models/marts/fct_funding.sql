{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['county_code', 'survey_year', 'form'],
        on_schema_change='fail',
        indexes=[
            {'columns': ['county_code', 'survey_year', 'form', 'submission_id']},
            {'columns': ['region_key']},
        ],
    )
}}
-- One row per reporting unit, survey year and funding source the unit's form version reports.
-- A version that splits its total into fewer sources than dim_funding_source knows (v2014: central
-- only, JCPT-3 v2014: none) gets an `unallocated` row for the rest of the total. Sources a version
-- does not report are absent, never 0; an unknown amount stays NULL. Incremental like fct_platform_year.
with changed as (
    {{ changed_forms() }}
),

version_sources as (
    select
        columns_.form,
        columns_.form_version,
        sources.funding_source
    from {{ ref('jcpt_form_columns') }} as columns_
    inner join {{ ref('dim_funding_source') }} as sources
        on columns_.column_name = 'funding_' || sources.funding_source
),

-- the sources each form version splits its total into, and whether that leaves a rest
version_splits as (
    select
        forms.form,
        versions.form_version,
        array_remove(array_agg(version_sources.funding_source), null) as sources,
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
),

facts as (
    select
        facts.survey_year,
        facts.region_code,
        facts.region_key,
        facts.platform_level,
        facts.county_code,
        facts.province_code,
        facts.submission_id,
        facts.form,
        facts.form_version,
        facts.funding_total_wan,
        facts.funding_central_wan,
        facts.funding_provincial_wan,
        facts.funding_municipal_wan,
        facts.funding_county_wan,
        version_splits.sources,
        version_splits.has_rest
    from {{ ref('fct_platform_year') }} as facts
    inner join changed
        on
            facts.county_code = changed.county_code
            and facts.survey_year = changed.survey_year
            and facts.form = changed.form
    inner join version_splits
        on
            facts.form = version_splits.form
            and facts.form_version = version_splits.form_version
)

select
    facts.survey_year,
    facts.region_code,
    facts.region_key,
    facts.platform_level,
    facts.county_code,
    facts.province_code,
    facts.submission_id,
    facts.form,
    version_sources.funding_source,
    case version_sources.funding_source
        when 'central' then facts.funding_central_wan
        when 'provincial' then facts.funding_provincial_wan
        when 'municipal' then facts.funding_municipal_wan
        when 'county' then facts.funding_county_wan
    end as amount_wan
from facts
inner join version_sources
    on
        facts.form = version_sources.form
        and facts.form_version = version_sources.form_version

union all

-- the rest of the total; unknown (NULL) when the total or a reported source is unknown
select
    survey_year,
    region_code,
    region_key,
    platform_level,
    county_code,
    province_code,
    submission_id,
    form,
    'unallocated' as funding_source,
    funding_total_wan
    - case when 'central' = any(sources) then funding_central_wan else 0 end
    - case when 'provincial' = any(sources) then funding_provincial_wan else 0 end
    - case when 'municipal' = any(sources) then funding_municipal_wan else 0 end
    - case when 'county' = any(sources) then funding_county_wan else 0 end as amount_wan
from facts
where has_rest
