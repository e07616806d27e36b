-- Each published figure against the warehouse's value for its province, survey year and level,
-- computed from the returns in force by the metric definitions of marts.md ("Reconciliation").
-- exact: match within 0.5%; approx: within 2%; at_least: match when the warehouse has at least the
-- figure. comparable = no: not_comparable, no warehouse value; definition: the value is shown with
-- its status and the note explains the other counting basis.
with level_sets as (
    select
        level_set,
        platform_level
    from (
        values
        ('county', 'county'),
        ('township', 'township'),
        ('village', 'village'),
        ('township_and_village', 'township'),
        ('township_and_village', 'village'),
        ('all', 'county'),
        ('all', 'township'),
        ('all', 'village')
    ) as level_pairs (level_set, platform_level)
),

totals as (
    select
        facts.survey_year,
        facts.province_code,
        level_sets.level_set,
        count(*) as units_total,
        sum(facts.has_platform) as platforms_total,
        sum(facts.standardized) as standardized_platforms,
        count(*) filter (where facts.platform_mode = 1) as dedicated_offices,
        count(facts.platform_mode) as platform_mode_known,
        count(*) filter (where facts.platform_level = 'township') as township_units,
        sum(facts.service_sites) as service_sites,
        sum(facts.staff_total) as staff_total,
        sum(facts.coordinators) as coordinators_total,
        sum(facts.persons_served) as persons_served,
        sum(facts.employers_served) as employers_served,
        sum(facts.service_population) as service_population,
        sum(facts.resident_population) as resident_population,
        sum(facts.funding_total_wan) as funding_total,
        sum(facts.funding_central_wan) as funding_central,
        sum(facts.funding_provincial_wan) as funding_provincial,
        sum(facts.funding_municipal_wan) as funding_municipal,
        sum(facts.funding_county_wan) as funding_county
    from {{ ref('fct_platform_year') }} as facts
    inner join level_sets on facts.platform_level = level_sets.platform_level
    group by facts.survey_year, facts.province_code, level_sets.level_set
),

metrics as (
    select
        totals.survey_year,
        totals.province_code,
        totals.level_set,
        metric_values.metric,
        metric_values.metric_value
    from totals
    cross join lateral (
        values
        ('units_total', totals.units_total::numeric),
        ('platforms_total', totals.platforms_total::numeric),
        ('coverage_rate', {{ safe_ratio('totals.platforms_total', 'totals.units_total') }}),
        ('standardized_platforms', totals.standardized_platforms::numeric),
        (
            'standardized_rate',
            {{ safe_ratio('totals.standardized_platforms', 'totals.platforms_total') }}
        ),
        (
            'dedicated_office_share',
            case
                when totals.platform_mode_known > 0
                    then {{ safe_ratio('totals.dedicated_offices', 'totals.township_units') }}
            end
        ),
        ('service_sites', totals.service_sites::numeric),
        ('staff_total', totals.staff_total::numeric),
        ('coordinators_total', totals.coordinators_total::numeric),
        ('persons_served', totals.persons_served::numeric),
        ('employers_served', totals.employers_served::numeric),
        ('service_population', totals.service_population::numeric),
        (
            'served_population_share',
            {{ safe_ratio('totals.service_population', 'totals.resident_population') }}
        ),
        ('funding_total', totals.funding_total),
        ('funding_central', totals.funding_central),
        ('funding_provincial', totals.funding_provincial),
        ('funding_municipal', totals.funding_municipal),
        ('funding_county', totals.funding_county)
    ) as metric_values (metric, metric_value)
),

figures as (
    select
        *,
        -- wan_persons, wan_person_times, …: the figure counts in 10,000s; wan_yuan is 万元 already
        case when unit like 'wan\_%' and unit != 'wan_yuan' then 10000 else 1 end as unit_divisor
    from {{ ref('published_figures') }}
),

compared as (
    select
        figures.fact_id,
        figures.province_code,
        figures.province,
        figures.as_of_year as survey_year,
        figures.level,
        figures.metric,
        figures.unit,
        figures.qualifier,
        figures.comparable,
        figures.value as published_value,
        case
            when figures.comparable != 'no' then metrics.metric_value::numeric / figures.unit_divisor
        end as warehouse_value,
        case figures.qualifier when 'exact' then 0.005 when 'approx' then 0.02 end as tolerance,
        figures.note
    from figures
    left join metrics
        on
            figures.province_code = metrics.province_code
            and figures.as_of_year = metrics.survey_year
            and figures.level = metrics.level_set
            and figures.metric = metrics.metric
)

select
    fact_id,
    province_code,
    province,
    survey_year,
    level,
    metric,
    unit,
    qualifier,
    published_value,
    warehouse_value,
    comparable,
    case
        when comparable = 'no' then 'not_comparable'
        when warehouse_value is null then 'differs'
        when qualifier = 'at_least' and warehouse_value >= published_value then 'match'
        when qualifier != 'at_least' and abs(warehouse_value - published_value) <= tolerance * abs(published_value)
            then 'match'
        else 'differs'
    end as status,
    tolerance,
    note
from compared
