-- The platform levels, one per form.
select
    platform_level,
    form,
    title_zh,
    case platform_level when 'county' then 1 when 'township' then 2 else 3 end as sort_order
from {{ ref('jcpt_forms') }}
