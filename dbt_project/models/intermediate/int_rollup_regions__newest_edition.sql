{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- The rollup regions (province, prefecture, county) of the newest registry edition: the boundaries
-- the *_current_boundaries marts restate every survey year on.
select
    editions.last_edition_year as boundary_edition,
    divisions.division_level as region_level,
    divisions.division_code as region_code,
    divisions.division_name as region_name
from {{ ref('int_registry_editions') }} as editions
inner join {{ ref('stg_reference__divisions') }} as divisions
    on editions.last_edition_year between divisions.first_year and divisions.last_year
where divisions.division_level in ('province', 'prefecture', 'county')
