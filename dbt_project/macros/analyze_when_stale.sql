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
