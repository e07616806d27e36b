{{
    config(indexes=[
        {'columns': ['survey_year', 'county_code']},
    ])
}}
-- One row per received file and form that the check stage has decided (pending files are still
-- in the pipeline). soft_flags adds H02, computed over the returns in force, to the in-force
-- submissions of the county and year it fires for.
with submissions as (
    select
        submissions.*,
        in_force.submission_id is not null as in_force,
        case
            when in_force.submission_id is not null and history.h02_fires then array['H02']
            else array[]::text []
        end as history_flags
    from {{ ref('stg_jcpt__submissions') }} as submissions
    left join {{ ref('int_submissions__in_force') }} as in_force
        on submissions.submission_id = in_force.submission_id
    left join {{ ref('int_county_years__funding_history') }} as history
        on
            submissions.county_code = history.county_code
            and submissions.survey_year = history.survey_year
    where submissions.outcome in ('accepted', 'quarantined')
)

select
    submission_id,
    file_name,
    county_code,
    survey_year,
    form,
    form_version,
    revision,
    received_at,
    coalesce(received_at > {{ deadline_at('survey_year') }}, false) as is_late,
    outcome,
    failed_rules,
    array(
        select distinct flags.flag
        from unnest(soft_flags || history_flags) as flags (flag)
        order by flags.flag
    ) as soft_flags,
    in_force
from submissions
