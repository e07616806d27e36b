-- Soft history rule H02 per county and survey year: the county's funding total summed over its
-- forms in force against the previous survey year's; fires when both are above 0 and one is more
-- than ten times the other (a 元/万元 mix-up).
with county_years as (
    select
        county_code,
        survey_year,
        sum(funding_total_wan) as funding_total_wan
    from {{ ref('core_county_year_totals') }}
    group by county_code, survey_year
)

select
    current_year.county_code,
    current_year.survey_year,
    current_year.funding_total_wan,
    previous_year.funding_total_wan as previous_funding_total_wan,
    coalesce(
        current_year.funding_total_wan > 0
        and previous_year.funding_total_wan > 0
        and (
            current_year.funding_total_wan > 10 * previous_year.funding_total_wan
            or previous_year.funding_total_wan > 10 * current_year.funding_total_wan
        ),
        false
    ) as h02_fires
from county_years as current_year
left join county_years as previous_year
    on
        current_year.county_code = previous_year.county_code
        and current_year.survey_year = previous_year.survey_year + 1
