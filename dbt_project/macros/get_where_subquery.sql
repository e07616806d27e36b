{#- Two build-scoped `where` values for the data tests of the large incremental tables, so that a
    nightly build does not rescan the country (every other `where` works as in dbt):
    - `changed_forms` (tables kept by county, survey year and form): only the rows of the forms this
      build rewrites (int_build__changed_forms: those changed since the build schema's last complete
      build; every form on a full build); the other rows passed the same tests in that build.
    - `registry_changed` (dim_region): the whole table when the registry changed since that build
      (int_build__registry_changed), otherwise nothing, since the table did not change either.
    Primary keys stay enforced on the whole table by the contracts' constraints. `offset 0` keeps a
    test's own predicate (`not in (…)`) out of the subquery: pushed under the join, it made
    PostgreSQL walk the whole table's index instead of looking up the few changed forms. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set intermediate = generate_schema_name('intermediate', none) -%}
    {%- if where == 'changed_forms' -%}
        {%- set filtered -%}
            (select * from {{ relation }}
             where (county_code, survey_year, form) in (
                 select county_code, survey_year, form from {{ intermediate }}.int_build__changed_forms)
             offset 0) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- elif where == 'registry_changed' -%}
        {%- set filtered -%}
            (select * from {{ relation }}
             where (select registry_changed from {{ intermediate }}.int_build__registry_changed)
             offset 0) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(dbt.default__get_where_subquery(relation)) }}
    {%- endif -%}
{%- endmacro %}
