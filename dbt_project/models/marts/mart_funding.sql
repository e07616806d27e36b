{{
    config(indexes=[
        {'columns': ['region_level', 'survey_year', 'funding_source']},
    ])
}}
-- Funding by survey year, region, platform level and source, in 万元. A source no unit's version
-- reports has no row; unknown amounts keep the sum NULL only when every amount is unknown. Rolled
-- up from the returns' partial sums by source (int_county_year_funding, the same rows as fct_funding).
select
    funding.survey_year,
    rollup_region.region_code,
    rollup_region.region_level,
    funding.platform_level,
    funding.funding_source,
    sum(funding.units_reported)::bigint as units_reported,
    sum(funding.amount_wan) as amount_wan
from {{ ref('int_county_year_funding') }} as funding
{{ region_rollup("funding.unit_county_code || '000000'") }}
group by
    funding.survey_year,
    rollup_region.region_code,
    rollup_region.region_level,
    funding.platform_level,
    funding.funding_source
