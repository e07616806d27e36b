-- The registry as dim_region's rows: one per code and validity span, with its stable key (code,
-- first edition) and the unknown member -1. A view: dim_region compares it with what it holds.
select
    {{ region_key("divisions.division_code", "divisions.first_year") }} as region_key,
    divisions.division_code as region_code,
    divisions.division_name as region_name,
    divisions.division_level,
    divisions.province_code,
    divisions.prefecture_code,
    divisions.county_code,
    divisions.township_code,
    divisions.is_dev_zone,
    divisions.is_placeholder,
    divisions.first_year as valid_from_year,
    case
        when divisions.last_year < editions.last_edition_year then divisions.last_year
    end as valid_to_year
from {{ ref('stg_reference__divisions') }} as divisions
cross join {{ ref('int_registry_editions') }} as editions

union all

select
    -1 as region_key,
    '000000000000' as region_code,
    'unknown (code not in the registry edition)' as region_name,
    'unknown' as division_level,
    null as province_code,
    null as prefecture_code,
    null as county_code,
    null as township_code,
    false as is_dev_zone,
    false as is_placeholder,
    null as valid_from_year,
    null as valid_to_year
