-- One row per survey year from the first form version to the latest year with a return (or the
-- newest registry edition, whichever is later).
with bounds as (
    select
        (select min(first_year) from {{ ref('jcpt_form_versions') }}) as first_year,
        greatest(
            (select max(survey_year) from {{ ref('stg_jcpt__submissions') }}),
            (select last_edition_year from {{ ref('int_registry_editions') }})
        ) as last_year
)

select
    years.survey_year::integer as survey_year,
    versions.form_version,
    versions.money_unit as source_money_unit,
    {{ edition_year('years.survey_year', 'editions') }}::integer as registry_edition_year,
    {{ deadline_at('years.survey_year') }} as deadline_at
from bounds
cross join lateral generate_series(bounds.first_year, bounds.last_year) as years (survey_year)
cross join {{ ref('int_registry_editions') }} as editions
inner join {{ ref('jcpt_form_versions') }} as versions
    on
        years.survey_year >= versions.first_year
        and (versions.last_year is null or years.survey_year <= versions.last_year)
