select
    code::text as division_code,
    name::text as division_name,
    level::text as division_level,
    province_code::text as province_code,
    prefecture_code::text as prefecture_code,
    county_code::text as county_code,
    township_code::text as township_code,
    is_dev_zone::integer::boolean as is_dev_zone,
    is_placeholder::integer::boolean as is_placeholder,
    first_year::integer as first_year,
    last_year::integer as last_year
from {{ source('reference', 'division') }}
