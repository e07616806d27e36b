-- The forms in force (county, survey year, form and submission) that this build of the marts
-- reflects. Built after every other marts model and test passed (it follows build_info), so it
-- is the state the next build in this schema catches up from (int_build__changed_forms).
-- depends_on: {{ ref('build_info') }}
select
    county_code,
    survey_year,
    form,
    submission_id
from {{ ref('int_submissions__in_force') }}
