{{
    config(indexes=[
        {'columns': ['region_level', 'survey_year', 'funding_source']},
    ])
}}
-- Funding by survey year, region, platform level and source, in 万元. A source no unit's version
-- reports has no row; unknown amounts keep the sum NULL only when every amount is unknown. Rolled
-- up from the returns' partial sums by source (core_county_year_funding, the same rows as fct_funding);
-- the estimates for missing returns (int_county_year_funding_estimates) only feed estimated_amount_wan.
with county_rows as (
    select
        funding.survey_year,
        funding.unit_county_code as county_code,
        funding.platform_level,
        funding.funding_source,
        funding.units_reported,
        funding.amount_wan,
        0 as counties_estimated,
        null::double precision as estimate_amount_wan
    from {{ ref('core_county_year_funding') }} as funding

    union all

    select
        estimates.survey_year,
        estimates.county_code,
        estimates.platform_level,
        estimates.funding_source,
        0 as units_reported,
        null as amount_wan,
        1 as counties_estimated,
        estimates.amount_wan as estimate_amount_wan
    from {{ ref('int_county_year_funding_estimates') }} as estimates
),

figures as (
    select
        county_rows.survey_year,
        rollup_region.region_code,
        rollup_region.region_level,
        county_rows.platform_level,
        county_rows.funding_source,
        sum(county_rows.units_reported)::bigint as units_reported,
        sum(county_rows.amount_wan) as amount_wan,
        sum(county_rows.counties_estimated)::bigint as counties_estimated,
        {{ with_estimate('sum(county_rows.amount_wan)', exact_sum('county_rows.estimate_amount_wan')) }}
            as estimated_amount_wan
    from county_rows
    {{ region_rollup("county_rows.county_code || '000000'") }}
    group by
        county_rows.survey_year,
        rollup_region.region_code,
        rollup_region.region_level,
        county_rows.platform_level,
        county_rows.funding_source
)

select
    figures.*,
    {{ obs_status('mart_funding', 'figures', 'figures.units_reported = 0') }} as obs_status,
    case
        when figures.counties_estimated > 0 then 'E'
        else {{ obs_status('mart_funding', 'figures', 'figures.units_reported = 0') }}
    end as estimated_obs_status
from figures
