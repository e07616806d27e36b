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
