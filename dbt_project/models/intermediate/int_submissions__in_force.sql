{{
    config(
        materialized='table',
        indexes=[{'columns': ['submission_id'], 'unique': true}],
        post_hook='analyze {{ this }}',
    )
}}
-- The submission in force per county, survey year and form: among the accepted ones, the greatest
-- (revision, received_at). A quarantined later revision is not accepted, so the previous accepted
-- one stays in force; byte-identical re-sends are one submission already at registration.
with accepted as (
    select
        submission_id,
        county_code,
        survey_year,
        form,
        form_version,
        revision,
        received_at,
        row_number() over (
            partition by county_code, survey_year, form
            order by revision desc, received_at desc, submission_id desc
        ) as recency
    from {{ ref('stg_jcpt__submissions') }}
    where
        outcome = 'accepted'
        and county_code is not null
        and survey_year is not null
        and form is not null
)

select
    accepted.submission_id,
    accepted.county_code,
    accepted.survey_year,
    accepted.form,
    forms.platform_level,
    accepted.form_version,
    accepted.revision,
    accepted.received_at
from accepted
inner join {{ ref('jcpt_forms') }} as forms on accepted.form = forms.form
where accepted.recency = 1
