-- The registry version this build of the marts reflects (dim_region and everything joined to it).
-- Built after every other marts model and test passed (it follows build_info), so the next
-- build in this schema knows whether the registry changed since (int_build__registry_changed).
-- depends_on: {{ ref('build_info') }}
select registry_version
from {{ ref('int_build__registry_changed') }}
