{{ config(indexes=[{'columns': ['status', 'survey_year']}]) }}
-- For every reporting county of the year's registry edition: is a return in force, did only
-- quarantined files come, or nothing? The list the survey office phones down each April.
with received as (
    select
        county_code,
        survey_year,
        count(*) filter (where outcome = 'quarantined') as files_quarantined,
        count(*) filter (where outcome = 'accepted') as files_accepted,
        min(received_at) filter (where outcome = 'accepted') as first_accepted_at,
        max(received_at) as last_received_at
    from {{ ref('stg_jcpt__submissions') }}
    where county_code is not null and survey_year is not null
    group by county_code, survey_year
),

in_force as (
    select
        county_code,
        survey_year,
        count(*) as forms_in_force
    from {{ ref('int_submissions__in_force') }}
    group by county_code, survey_year
)

select
    counties.survey_year,
    counties.county_code,
    counties.county_name,
    counties.province_code,
    counties.prefecture_code,
    counties.is_dev_zone,
    case
        when coalesce(in_force.forms_in_force, 0) > 0 then 'accepted'
        when coalesce(received.files_quarantined, 0) > 0 then 'quarantined'
        else 'missing'
    end as status,
    coalesce(received.first_accepted_at > {{ deadline_at('counties.survey_year') }}, false) as is_late,
    coalesce(in_force.forms_in_force, 0)::integer as forms_in_force,
    received.first_accepted_at,
    received.last_received_at,
    coalesce(received.files_accepted, 0) as files_accepted,
    coalesce(received.files_quarantined, 0) as files_quarantined
from {{ ref('int_reporting_counties') }} as counties
left join received
    on
        counties.county_code = received.county_code
        and counties.survey_year = received.survey_year
left join in_force
    on
        counties.county_code = in_force.county_code
        and counties.survey_year = in_force.survey_year
