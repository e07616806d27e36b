{#- The sum of double precision values whatever order the rows arrive in: each addend as numeric
    (exact addition), the total back to double precision. A float sum depends on the order of its
    rows, and a rebuilt warehouse stores them in another order: its figures differed in the 16th
    digit. -#}
{% macro exact_sum(expression) -%}
    sum(({{ expression }})::numeric)::double precision
{%- endmacro %}
