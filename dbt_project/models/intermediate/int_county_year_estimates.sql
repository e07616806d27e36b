{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- Estimates for the returns that are missing: every expected county of a survey year whose form of a
-- platform level is not in force. Method (README "Statistics"): carry forward the county's last
-- accepted return of that form (an earlier survey year); failing that, the prefecture's rates among
-- the counties that reported the level that year, applied to the county's units in the registry
-- edition (1 county centre, its townships, its villages). One row per county, year and level;
-- nothing when neither exists (the figure stays missing).
with missing as (
    select
        counties.survey_year,
        counties.county_code,
        counties.prefecture_code,
        levels.platform_level
    from {{ ref('int_reporting_counties') }} as counties
    cross join {{ ref('dim_platform_level') }} as levels
    where not exists (
            select 1
            from {{ ref('int_submissions__in_force') }} as in_force
            where
                in_force.county_code = counties.county_code
                and in_force.survey_year = counties.survey_year
                and in_force.platform_level = levels.platform_level
        )
),

last_accepted as (
    select distinct on (missing.survey_year, missing.county_code, missing.platform_level)
        missing.survey_year,
        missing.county_code,
        missing.platform_level,
        in_force.survey_year as source_year,
        in_force.form
    from missing
    inner join {{ ref('int_submissions__in_force') }} as in_force
        on
            missing.county_code = in_force.county_code
            and missing.platform_level = in_force.platform_level
            and missing.survey_year > in_force.survey_year
    order by missing.survey_year asc, missing.county_code asc, missing.platform_level asc, in_force.survey_year desc
),

carried_forward as (
    select
        last_accepted.survey_year,
        last_accepted.county_code,
        last_accepted.platform_level,
        'carry_forward'::text as estimate_method,
        last_accepted.source_year,
        sum(totals.units_reported)::double precision as units_reported,
        sum(totals.units_with_platform)::double precision as units_with_platform,
        sum(totals.service_sites)::double precision as service_sites,
        sum(totals.standardized_platforms)::double precision as standardized_platforms,
        sum(totals.staff_total)::double precision as staff_total,
        sum(totals.coordinators)::double precision as coordinators,
        sum(totals.persons_served)::double precision as persons_served
    from last_accepted
    inner join {{ ref('core_county_year_totals') }} as totals
        on
            last_accepted.county_code = totals.county_code
            and last_accepted.source_year = totals.survey_year
            and last_accepted.form = totals.form
    group by
        last_accepted.survey_year, last_accepted.county_code, last_accepted.platform_level,
        last_accepted.source_year
),

registry_units as (
    -- the units a county would report at each level in the year's edition
    select
        missing.survey_year,
        missing.county_code,
        missing.platform_level,
        missing.prefecture_code,
        case missing.platform_level
            when 'county' then 1
            else (
                select count(*)
                from {{ ref('stg_reference__divisions') }} as divisions
                where
                    divisions.county_code = missing.county_code
                    and divisions.division_level = missing.platform_level
                    and {{ edition_year('missing.survey_year', 'editions') }}
                    between divisions.first_year and divisions.last_year
            )
        end as units_expected
    from missing
    cross join {{ ref('int_registry_editions') }} as editions
    where not exists (
            select 1
            from carried_forward
            where
                carried_forward.survey_year = missing.survey_year
                and carried_forward.county_code = missing.county_code
                and carried_forward.platform_level = missing.platform_level
        )
),

prefecture_rates as (
    select
        totals.survey_year,
        left(totals.county_code, 4) || '00' as prefecture_code,
        totals.platform_level,
        {{ safe_ratio('sum(totals.units_with_platform)', 'sum(totals.units_reported)') }} as platform_rate,
        {{ safe_ratio('sum(totals.service_sites)', 'sum(totals.units_reported)') }} as sites_per_unit,
        {{ safe_ratio('sum(totals.standardized_platforms)', 'sum(totals.units_reported)') }} as standardized_per_unit,
        {{ safe_ratio('sum(totals.staff_total)', 'sum(totals.units_reported)') }} as staff_per_unit,
        {{ safe_ratio('sum(totals.coordinators)', 'sum(totals.units_reported)') }} as coordinators_per_unit,
        {{ safe_ratio('sum(totals.persons_served)', 'sum(totals.units_reported)') }} as served_per_unit
    from {{ ref('core_county_year_totals') }} as totals
    group by totals.survey_year, left(totals.county_code, 4) || '00', totals.platform_level
),

imputed as (
    select
        registry_units.survey_year,
        registry_units.county_code,
        registry_units.platform_level,
        'prefecture_rate'::text as estimate_method,
        registry_units.survey_year as source_year,
        registry_units.units_expected::double precision as units_reported,
        registry_units.units_expected * rates.platform_rate as units_with_platform,
        registry_units.units_expected * rates.sites_per_unit as service_sites,
        registry_units.units_expected * rates.standardized_per_unit as standardized_platforms,
        registry_units.units_expected * rates.staff_per_unit as staff_total,
        registry_units.units_expected * rates.coordinators_per_unit as coordinators,
        registry_units.units_expected * rates.served_per_unit as persons_served
    from registry_units
    inner join prefecture_rates as rates
        on
            registry_units.survey_year = rates.survey_year
            and registry_units.prefecture_code = rates.prefecture_code
            and registry_units.platform_level = rates.platform_level
    where registry_units.units_expected > 0
)

select * from carried_forward
union all
select * from imputed
