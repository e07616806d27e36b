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

{#- For an incremental fact in the build schema: the (county, survey year, form) whose rows this run
    rewrites: the build's change set (int_build__changed_forms: changed since the schema's last
    complete build, with the next survey year of each) plus any form in force whose submission is not
    the one this table holds (a safety net compared with the table's own content). A full build
    takes every form in force. -#}
{% macro changed_forms() -%}
    {%- if not is_incremental() %}
    select
        county_code,
        survey_year,
        form
    from {{ ref('int_submissions__in_force') }}
    {%- else %}
    select
        county_code,
        survey_year,
        form
    from {{ ref('int_build__changed_forms') }}
    union
    select
        in_force.county_code,
        in_force.survey_year,
        in_force.form
    from {{ ref('int_submissions__in_force') }} as in_force
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

{#- Pre-hook of an incremental fact (inside its transaction): remove the rows of every form in the
    build's change set first, so that a form no longer in force (withdrawn) leaves the fact too;
    delete+insert then writes the forms that have rows. -#}
{% macro delete_changed_forms() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored_rows
    using {{ ref('int_build__changed_forms') }} as changed
    where
        stored_rows.county_code = changed.county_code
        and stored_rows.survey_year = changed.survey_year
        and stored_rows.form = changed.form
    {%- endif -%}
{%- endmacro %}

{#- Pre-hook of an incremental store in core (inside its transaction): remove every row whose
    submission is not the one in force for its form: forms no longer in force at all (a reprocess
    quarantined the only accepted submission) and superseded submissions. delete+insert alone would
    keep a superseded submission's rows when the new one has no row to insert. -#}
{% macro delete_rows_not_in_force() -%}
    {%- if is_incremental() -%}
    delete from {{ this }} as stored_rows
    where not exists (
        select 1
        from {{ ref('int_submissions__in_force') }} as in_force
        where
            stored_rows.county_code = in_force.county_code
            and stored_rows.survey_year = in_force.survey_year
            and stored_rows.form = in_force.form
            and stored_rows.submission_id = in_force.submission_id
    )
    {%- endif -%}
{%- endmacro %}

{#- A unit's amount from one funding source (a row of int_form_versions__funding_sources): the
    reported column, or for `unallocated` the total minus the sources the version reports (unknown,
    NULL, when the total or one of them is unknown). -#}
{% macro funding_amount(units, sources) -%}
    case {{ sources }}.funding_source
        {%- for source in ['central', 'provincial', 'municipal', 'county'] %}
        when '{{ source }}' then {{ units }}.funding_{{ source }}_wan
        {%- endfor %}
        when 'unallocated'
            then {{ units }}.funding_total_wan
            {%- for source in ['central', 'provincial', 'municipal', 'county'] %}
            - case
                when '{{ source }}' = any({{ sources }}.reported_sources) then {{ units }}.funding_{{ source }}_wan
                else 0
            end
            {%- endfor %}
    end
{%- endmacro %}

{#- For an incremental store in core (never swapped): the forms in force whose submission is not the
    one the store holds (an indexed anti-join on the store's key and submission). A full build takes
    every form in force. -#}
{% macro forms_not_stored() -%}
    select in_force.*
    from {{ ref('int_submissions__in_force') }} as in_force
    {%- if is_incremental() %}
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

{#- The canonical column layout of the unit-row store: every indicator column of any form, in the
    order of the jcpt_form_columns seed (generated from forms.yaml: forms in order, within a form the
    newest version's positions first, as the raw tables), each with its type and the staging
    relations that have it (money columns carry staging's `_wan` suffix).
    Read when the model runs (empty while parsing), so a column added to forms.yaml reaches the
    store through the seed and its staging model, with no column list in the SQL. Appends to
    layout.columns (a namespace the caller owns). -#}
{% macro unit_row_layout(layout, relations) -%}
    {%- if execute -%}
        {%- set spec_columns = run_query(
            "select columns_.column_name, columns_.column_type,"
            ~ " min(columns_.form || ':' || lpad((9999 - versions.first_year)::text, 4, '0')"
            ~ " || ':' || lpad(columns_.position::text, 4, '0')) as first_seen"
            ~ " from " ~ ref('jcpt_form_columns') ~ " as columns_"
            ~ " inner join " ~ ref('jcpt_form_versions') ~ " as versions"
            ~ " on columns_.form_version = versions.form_version"
            ~ " group by columns_.column_name, columns_.column_type order by first_seen"
        ) -%}
        {%- set staged = {} -%}
        {%- for relation in relations -%}
            {%- do staged.update({relation.identifier: adapter.get_columns_in_relation(relation)}) -%}
        {%- endfor -%}
        {%- for row in spec_columns.rows -%}
            {%- set name = row['column_name'] ~ ('_wan' if row['column_type'] == 'money' else '') -%}
            {%- set column = namespace(type=none, sources=[]) -%}
            {%- for relation in relations -%}
                {%- for staged_column in staged[relation.identifier] if staged_column.name == name -%}
                    {%- set column.type = staged_column.data_type -%}
                    {%- do column.sources.append(relation.identifier) -%}
                {%- endfor -%}
            {%- endfor -%}
            {%- if column.type is none -%}
                {{ exceptions.raise_compiler_error(
                    "column " ~ name ~ " of jcpt_form_columns is in no staging model of the unit rows") }}
            {%- endif -%}
            {%- do layout.columns.append({'name': name, 'type': column.type, 'sources': column.sources}) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}

{#- A table of the build schema's last complete build (mart_build_forms, mart_build_registry) into
    found.relation, or none on a full refresh, when there is none, and while parsing. -#}
{% macro find_built_relation(found, identifier) -%}
    {%- if execute -%}
        {%- if not flags.FULL_REFRESH -%}
            {%- set found.relation = adapter.get_relation(
                database=target.database, schema=var('build_schema'), identifier=identifier) -%}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}

{#- Post-hook of the tables in core and the build schema (inside the model's transaction): fresh
    planner statistics when the table is new (never analysed) or this build rewrote a large share
    of it (a change set of more than a tenth of the forms in force, counted with their next survey
    years, or a changed registry). The incremental tables are built after the build's change set
    and registry check (they depend on them); every other table is new each run. Without
    them PostgreSQL plans the million-row span joins as nested loops; with a small nightly change
    the statistics are still right and analysing millions of rows again would cost more than the
    change. -#}
{% macro analyze_when_stale() -%}
    {%- set intermediate = generate_schema_name('intermediate', none) -%}
    do $analyze$
    begin
        if (select reltuples < 0 from pg_class where oid = '{{ this }}'::regclass) then
            analyze {{ this }};
        {%- if model.config.materialized == 'incremental' %}
        elsif (select registry_changed from {{ intermediate }}.int_build__registry_changed)
            or (select count(*) from {{ intermediate }}.int_build__changed_forms)
            > 0.2 * (select count(*) from {{ intermediate }}.int_submissions__in_force)
        then
            analyze {{ this }};
        {%- endif %}
        end if;
    end
    $analyze$
{%- endmacro %}

{#- Observation status and vintages of the rollup marts (README "Statistics"). -#}

{#- The figures of the rollup marts that carry an observation status and are kept as vintages: per
    mart, the funding source column (when the mart has one), the observed figures (status
    obs_status) and the estimated ones (estimated_obs_status). Everything downstream (publish.py, the
    SDMX export) reads the long form, mart_rollup_figures. Fills the dict `marts` (a macro's return()
    does not render offline, where sqlfluff lints). -#}
{% macro rollup_figures_into(marts) -%}
    {%- do marts.update({
        'mart_coverage': {
            'funding_source': none,
            'figures': ['units_reported', 'units_with_platform', 'service_sites', 'standardized_platforms',
                        'coverage_rate', 'standardized_rate', 'counties_expected', 'counties_reported'],
            'estimated': ['estimated_units_reported', 'estimated_units_with_platform', 'estimated_service_sites',
                          'estimated_standardized_platforms', 'estimated_coverage_rate'],
        },
        'mart_staff': {
            'funding_source': none,
            'figures': ['units_reported', 'platforms', 'staff_total', 'staff_per_platform', 'coordinators',
                        'persons_served'],
            'estimated': ['estimated_units_reported', 'estimated_platforms', 'estimated_staff_total',
                          'estimated_persons_served'],
        },
        'mart_funding': {
            'funding_source': 'funding_source',
            'figures': ['units_reported', 'amount_wan'],
            'estimated': ['estimated_amount_wan'],
        },
    }) -%}
{%- endmacro %}

{#- The moment survey year Y is closed: its deadline plus the revision window. -#}
{% macro closed_at(survey_year) -%}
    ({{ deadline_at(survey_year) }} + make_interval(days => {{ var('revision_window_days') }}::integer))
{%- endmacro %}

{#- obs_status of a row's observed figures: M no return in force, R a figure differs from its first
    publication, P the survey year is not closed yet, A otherwise. -#}
{% macro obs_status(mart, row, missing_when) -%}
    case
        when {{ missing_when }} then 'M'
        when {{ revised_since_first_publication(mart, row) }} then 'R'
        when now() < {{ closed_at(row ~ '.survey_year') }} then 'P'
        else 'A'
    end
{%- endmacro %}

{#- True when a figure of the row (table alias `row`) was published before with another value. -#}
{% macro revised_since_first_publication(mart, row) -%}
    {%- set marts = {} -%}
    {%- do rollup_figures_into(marts) -%}
    {%- set spec = marts[mart] -%}
    exists (
        select 1
        from {{ ref('int_vintage__first_published') }} as first_published
        where
            first_published.mart = '{{ mart }}'
            and first_published.survey_year = {{ row }}.survey_year
            and first_published.region_code = {{ row }}.region_code
            and first_published.platform_level = {{ row }}.platform_level
            and first_published.funding_source = {{ row ~ '.' ~ spec.funding_source if spec.funding_source else "''" }}
            and first_published.value is distinct from (
                case first_published.indicator
                    {%- for figure in spec.figures %}
                    when '{{ figure }}' then {{ row }}.{{ figure }}::double precision
                    {%- endfor %}
                end
            )
            and first_published.indicator in ('{{ spec.figures | join("', '") }}')
    )
{%- endmacro %}

{#- One row per figure of a rollup mart (long form): observed figures with obs_status, estimated
    ones with estimated_obs_status. -#}
{% macro rollup_figures_of(mart) -%}
    {%- set marts = {} -%}
    {%- do rollup_figures_into(marts) -%}
    {%- set spec = marts[mart] -%}
    select
        '{{ mart }}'::text as mart,
        rows_.survey_year,
        rows_.region_code,
        rows_.region_level,
        rows_.platform_level,
        {{ 'rows_.' ~ spec.funding_source if spec.funding_source else "''::text" }} as funding_source,
        figures.indicator,
        figures.value,
        figures.obs_status
    from {{ ref(mart) }} as rows_
    cross join lateral (
        values
        {%- for figure in spec.figures %}
        ('{{ figure }}', rows_.{{ figure }}::double precision, rows_.obs_status),
        {%- endfor %}
        {%- for figure in spec.estimated %}
        ('{{ figure }}', rows_.{{ figure }}::double precision, rows_.estimated_obs_status)
        {{- ',' if not loop.last }}
        {%- endfor %}
    ) as figures (indicator, value, obs_status)
{%- endmacro %}

{#- Observed plus estimated: NULL only when both are unknown. -#}
{% macro with_estimate(observed, estimated) -%}
    case
        when {{ observed }} is null and {{ estimated }} is null then null
        else coalesce({{ observed }}, 0) + coalesce({{ estimated }}, 0)
    end
{%- endmacro %}

{#- A county-level figure restated on the newest edition: its share (crosswalk weight). -#}
{% macro restated(column, crosswalk) -%}
    ({{ column }} * coalesce({{ crosswalk }}.weight, 1))
{%- endmacro %}

{#- The estimate columns of a branch of mart_coverage's county rows that holds no estimate. -#}
{% macro no_estimate() -%}
    0 as counties_estimated,
        null::double precision as estimate_units_reported,
        null::double precision as estimate_units_with_platform,
        null::double precision as estimate_service_sites,
        null::double precision as estimate_standardized_platforms
{%- endmacro %}
