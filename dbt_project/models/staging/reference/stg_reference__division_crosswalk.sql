select
    edition::integer as edition,
    county_code::text as county_code,
    county_name::text as county_name,
    successor_code::text as successor_code,
    successor_name::text as successor_name,
    reason::text as reason,
    weight::double precision as weight,
    overridden::boolean as is_overridden
from {{ source('reference', 'division_crosswalk') }}
