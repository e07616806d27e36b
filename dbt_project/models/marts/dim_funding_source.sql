-- The sources of platform funding. `unallocated` is the part of a v2014 total the form does not
-- split (v2014 reports the central share only; JCPT-3 v2014 not even that).
select
    funding_source,
    name_zh,
    sort_order
from (
    values
    ('central', '中央资金', 1),
    ('provincial', '省级资金', 2),
    ('municipal', '市级资金', 3),
    ('county', '县级资金', 4),
    ('unallocated', '未分来源（2014版报表）', 5)
) as sources (funding_source, name_zh, sort_order)
