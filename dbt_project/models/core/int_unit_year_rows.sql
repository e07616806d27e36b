{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key=['county_code', 'survey_year', 'form'],
        on_schema_change='sync_all_columns',
        indexes=[
            {'columns': ['county_code', 'survey_year', 'form', 'submission_id']},
            {'columns': ['survey_year', 'region_code']},
        ],
    )
}}
-- The unit rows of every return in force, one row per reporting unit and survey year: the
-- incremental fact store (schema core, never swapped). A run rewrites only the (county, survey
-- year, form) whose submission in force changed: a new revision replaces the rows of the old one
-- by delete+insert on that key. A form in force whose rows are not stored yet is picked up on the
-- next run, so a submission registered before its rows were loaded heals itself.
with changed as (
    select in_force.*
    from {{ ref('int_submissions__in_force') }} as in_force
    {% if is_incremental() %}
        where not exists (
                select 1
                from {{ this }} as stored_rows
                where
                    stored_rows.county_code = in_force.county_code
                    and stored_rows.survey_year = in_force.survey_year
                    and stored_rows.form = in_force.form
                    and stored_rows.submission_id = in_force.submission_id
            )
    {% endif %}
),

unit_rows as (
    select
        in_force.county_code,
        in_force.survey_year,
        in_force.form,
        in_force.platform_level,
        in_force.form_version,
        form_rows.submission_id,
        form_rows.source_row,
        form_rows.region_code,
        form_rows.unit_name,
        null::integer as unit_type,
        null::integer as urban_rural_code,
        form_rows.has_platform,
        null::integer as platform_mode,
        form_rows.standardized,
        null::bigint as service_sites,
        form_rows.floor_area,
        form_rows.service_windows,
        form_rows.self_service_terminals,
        form_rows.network_connected,
        form_rows.staff_total,
        form_rows.staff_establishment,
        form_rows.staff_welfare,
        form_rows.staff_other,
        form_rows.staff_trained,
        form_rows.persons_served,
        form_rows.employers_served,
        form_rows.funding_total_wan,
        form_rows.funding_central_wan,
        form_rows.funding_provincial_wan,
        form_rows.funding_municipal_wan,
        form_rows.funding_county_wan,
        null::bigint as service_items,
        null::bigint as online_items,
        null::bigint as institutions,
        null::bigint as staff_certified,
        null::bigint as resident_population,
        null::bigint as service_population,
        null::bigint as staff_fulltime,
        null::bigint as staff_parttime,
        null::bigint as coordinators,
        form_rows.quality_flags
    from changed as in_force
    inner join {{ ref('stg_jcpt__county_rows') }} as form_rows
        on in_force.submission_id = form_rows.submission_id

    union all

    select
        in_force.county_code,
        in_force.survey_year,
        in_force.form,
        in_force.platform_level,
        in_force.form_version,
        form_rows.submission_id,
        form_rows.source_row,
        form_rows.region_code,
        form_rows.unit_name,
        form_rows.unit_type,
        null::integer as urban_rural_code,
        form_rows.has_platform,
        form_rows.platform_mode,
        form_rows.standardized,
        form_rows.service_sites,
        form_rows.floor_area,
        form_rows.service_windows,
        form_rows.self_service_terminals,
        form_rows.network_connected,
        form_rows.staff_total,
        form_rows.staff_establishment,
        form_rows.staff_welfare,
        form_rows.staff_other,
        form_rows.staff_trained,
        form_rows.persons_served,
        form_rows.employers_served,
        form_rows.funding_total_wan,
        form_rows.funding_central_wan,
        form_rows.funding_provincial_wan,
        form_rows.funding_municipal_wan,
        form_rows.funding_county_wan,
        form_rows.service_items,
        form_rows.online_items,
        form_rows.institutions,
        form_rows.staff_certified,
        form_rows.resident_population,
        form_rows.service_population,
        null::bigint as staff_fulltime,
        null::bigint as staff_parttime,
        null::bigint as coordinators,
        form_rows.quality_flags
    from changed as in_force
    inner join {{ ref('stg_jcpt__township_rows') }} as form_rows
        on in_force.submission_id = form_rows.submission_id

    union all

    select
        in_force.county_code,
        in_force.survey_year,
        in_force.form,
        in_force.platform_level,
        in_force.form_version,
        form_rows.submission_id,
        form_rows.source_row,
        form_rows.region_code,
        form_rows.unit_name,
        null::integer as unit_type,
        form_rows.urban_rural_code,
        form_rows.has_platform,
        null::integer as platform_mode,
        form_rows.standardized,
        null::bigint as service_sites,
        null::numeric as floor_area,
        null::bigint as service_windows,
        null::bigint as self_service_terminals,
        form_rows.network_connected,
        form_rows.staff_total,
        null::bigint as staff_establishment,
        null::bigint as staff_welfare,
        null::bigint as staff_other,
        null::bigint as staff_trained,
        form_rows.persons_served,
        null::bigint as employers_served,
        form_rows.funding_total_wan,
        form_rows.funding_central_wan,
        form_rows.funding_provincial_wan,
        form_rows.funding_municipal_wan,
        form_rows.funding_county_wan,
        null::bigint as service_items,
        null::bigint as online_items,
        null::bigint as institutions,
        null::bigint as staff_certified,
        null::bigint as resident_population,
        null::bigint as service_population,
        form_rows.staff_fulltime,
        form_rows.staff_parttime,
        form_rows.coordinators,
        form_rows.quality_flags
    from changed as in_force
    inner join {{ ref('stg_jcpt__village_rows') }} as form_rows
        on in_force.submission_id = form_rows.submission_id
)

select * from unit_rows
