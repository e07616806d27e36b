{{
    config(
        materialized='table',
        indexes=[{'columns': ['county_code', 'survey_year', 'form'], 'unique': true}],
        post_hook='analyze {{ this }}',
    )
}}
-- The (county, survey year, form) this build rewrites and tests in the build schema: those whose
-- submission in force is not the one of the last complete build of that schema (its
-- build_forms: new, revised and withdrawn forms), plus the next survey year of each (its H01
-- flags compare with the changed year). Everything in force on a full refresh, or when the build
-- schema holds no complete build. build_forms is written only after every test passed, so a
-- failed build's forms are rewritten and tested again by the next.
-- built with the registry check, which the incremental tables' post-hooks read too:
-- depends_on: {{ ref('int_build__registry_changed') }}
{%- set built = namespace(relation=none) %}
{%- do find_built_relation(built, 'build_forms') %}

with in_force as (
    select
        county_code,
        survey_year,
        form,
        submission_id
    from {{ ref('int_submissions__in_force') }}
),

{%- if built.relation is none %}

    changed as (
        select
            county_code,
            survey_year,
            form
        from in_force
    )
{%- else %}

    changed as (
        select
            coalesce(in_force.county_code, built.county_code) as county_code,
            coalesce(in_force.survey_year, built.survey_year) as survey_year,
            coalesce(in_force.form, built.form) as form
        from in_force
        full outer join {{ built.relation }} as built
            on
                in_force.county_code = built.county_code
                and in_force.survey_year = built.survey_year
                and in_force.form = built.form
        where in_force.submission_id is distinct from built.submission_id
    )
{%- endif %}

select distinct
    changed.county_code,
    changed.survey_year + next_year.years as survey_year,
    changed.form
from changed
cross join (values (0), (1)) as next_year (years)
