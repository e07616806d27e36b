-- The published figures' vintages with the time of their publication.
select
    figures.publication_id,
    publications.published_at,
    figures.mart,
    figures.survey_year,
    figures.region_code,
    figures.platform_level,
    figures.funding_source,
    figures.indicator,
    figures.value,
    figures.obs_status,
    figures.withdrawn as is_withdrawn
from {{ source('vintage', 'figure') }} as figures
inner join {{ source('vintage', 'publication') }} as publications
    on figures.publication_id = publications.publication_id
