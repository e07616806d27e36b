{#- The registry edition a survey year uses: years before the first edition use the first, years
    after the newest use the newest. The bounds come from the registry itself (int_registry_editions). -#}
{% macro edition_year(survey_year, editions) -%}
    least(greatest({{ survey_year }}, {{ editions }}.first_edition_year), {{ editions }}.last_edition_year)
{%- endmacro %}

{#- The moment a survey year's return becomes late: 31 March of the next year, 24:00 local time. -#}
{% macro deadline_at(survey_year) -%}
    make_timestamptz({{ survey_year }} + 1, 4, 1, 0, 0, 0, '{{ var("deadline_time_zone") }}')
{%- endmacro %}

{#- One row per rollup region containing a unit: its province, prefecture and county, each as a
    12-digit code (a rollup aggregates every unit whose code lies inside the region). -#}
{% macro region_rollup(code_column) -%}
    cross join lateral (
        values
        ('province', left({{ code_column }}, 2) || '0000000000'),
        ('prefecture', left({{ code_column }}, 4) || '00000000'),
        ('county', left({{ code_column }}, 6) || '000000')
    ) as rollup_region (region_level, region_code)
{%- endmacro %}

{#- A rate (double precision) that is NULL when the denominator is 0 or NULL. -#}
{% macro safe_ratio(numerator, denominator) -%}
    ({{ numerator }})::double precision / nullif({{ denominator }}, 0)
{%- endmacro %}

{#- dim_region's key: derived from (code, first edition of the span), so every rebuild gives a
    span the same key (12-digit code × 10^4 + year fits a bigint). -#}
{% macro region_key(division_code, first_year) -%}
    ({{ division_code }}::bigint * 10000 + {{ first_year }})
{%- endmacro %}

{#- For an incremental fact in the build schema: the (county, survey year, form) whose rows must be
    rewritten because their submission in force is not the one this table holds, plus the next survey
    year of each (its H01 flags compare with the changed year). A full build takes every form in
    force. -#}
{% macro changed_forms() -%}
    {%- if not is_incremental() %}
    select
        county_code,
        survey_year,
        form
    from {{ ref('int_submissions__in_force') }}
    {%- else %}
    select distinct
        in_force.county_code,
        in_force.survey_year + next_year.years as survey_year,
        in_force.form
    from {{ ref('int_submissions__in_force') }} as in_force
    cross join (values (0), (1)) as next_year (years)
    where not exists (
        select 1
        from {{ this }} as stored_rows
        where
            stored_rows.county_code = in_force.county_code
            and stored_rows.survey_year = in_force.survey_year
            and stored_rows.form = in_force.form
            and stored_rows.submission_id = in_force.submission_id
    )
    {%- endif %}
{%- endmacro %}
