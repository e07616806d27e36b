{{
    config(indexes=[
        {'columns': ['region_level', 'survey_year', 'funding_source']},
    ])
}}
-- Funding by survey year, region, platform level and source, in 万元. A source no unit's version
-- reports has no row; unknown amounts keep the sum NULL only when every amount is unknown.
select
    funding.survey_year,
    rollup_region.region_code,
    rollup_region.region_level,
    funding.platform_level,
    funding.funding_source,
    count(*) as units_reported,
    sum(funding.amount_wan) as amount_wan
from {{ ref('fct_funding') }} as funding
{{ region_rollup('funding.region_code') }}
group by
    funding.survey_year,
    rollup_region.region_code,
    rollup_region.region_level,
    funding.platform_level,
    funding.funding_source
