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
