{{ config(materialized='ephemeral') }}
-- Ephemeral: the published view mart_figure_vintages reads it, and a staging view rebuilt by a build
-- is dropped with CASCADE, which took the published mart with it until the next publish.
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
