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

-- per province of the reporting county (as fct_platform_year.province_code), from the returns'
-- partial sums (core_county_year_totals)
totals as (
    select
        return_totals.survey_year,
        left(return_totals.county_code, 2) || '0000' as province_code,
        level_sets.level_set,
        sum(return_totals.units_reported) as units_total,
        sum(return_totals.units_with_platform) as platforms_total,
        sum(return_totals.standardized_platforms) as standardized_platforms,
        sum(return_totals.dedicated_offices) as dedicated_offices,
        sum(return_totals.platform_mode_known) as platform_mode_known,
        coalesce(
            sum(return_totals.units_reported) filter (where return_totals.platform_level = 'township'), 0
        ) as township_units,
        sum(return_totals.service_sites) as service_sites,
        sum(return_totals.staff_total) as staff_total,
        sum(return_totals.coordinators) as coordinators_total,
        sum(return_totals.persons_served) as persons_served,
        sum(return_totals.employers_served) as employers_served,
        sum(return_totals.service_population) as service_population,
        sum(return_totals.resident_population) as resident_population,
        sum(return_totals.funding_total_wan) as funding_total,
        sum(return_totals.funding_central_wan) as funding_central,
        sum(return_totals.funding_provincial_wan) as funding_provincial,
        sum(return_totals.funding_municipal_wan) as funding_municipal,
        sum(return_totals.funding_county_wan) as funding_county
    from {{ ref('core_county_year_totals') }} as return_totals
    inner join level_sets on return_totals.platform_level = level_sets.platform_level
    group by return_totals.survey_year, left(return_totals.county_code, 2) || '0000', level_sets.level_set
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
