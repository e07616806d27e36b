{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- Funding by source for the missing returns, by the method int_county_year_estimates chose for the
-- county, year and level: the last accepted return's amounts, or the prefecture's amount per
-- reporting unit that year times the county's units.
with prefecture_per_unit as (
    select
        funding.survey_year,
        left(funding.county_code, 4) || '00' as prefecture_code,
        funding.platform_level,
        funding.funding_source,
        {{ safe_ratio('sum(funding.amount_wan)', 'sum(funding.units_reported)') }} as amount_per_unit
    from {{ ref('core_county_year_funding') }} as funding
    group by funding.survey_year, left(funding.county_code, 4) || '00', funding.platform_level, funding.funding_source
)

select
    estimates.survey_year,
    estimates.county_code,
    estimates.platform_level,
    funding.funding_source,
    estimates.estimate_method,
    sum(funding.amount_wan)::double precision as amount_wan
from {{ ref('int_county_year_estimates') }} as estimates
inner join {{ ref('core_county_year_funding') }} as funding
    on
        estimates.county_code = funding.county_code
        and estimates.source_year = funding.survey_year
        and estimates.platform_level = funding.platform_level
where estimates.estimate_method = 'carry_forward'
group by
    estimates.survey_year, estimates.county_code, estimates.platform_level, funding.funding_source,
    estimates.estimate_method

union all

select
    estimates.survey_year,
    estimates.county_code,
    estimates.platform_level,
    rates.funding_source,
    estimates.estimate_method,
    estimates.units_reported * rates.amount_per_unit as amount_wan
from {{ ref('int_county_year_estimates') }} as estimates
inner join prefecture_per_unit as rates
    on
        estimates.survey_year = rates.survey_year
        and left(estimates.county_code, 4) || '00' = rates.prefecture_code
        and estimates.platform_level = rates.platform_level
where estimates.estimate_method = 'prefecture_rate'
