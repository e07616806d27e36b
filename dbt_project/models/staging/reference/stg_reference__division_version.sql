-- The registry's version: its relation file (`hrss reference load` replaces the table as a whole,
-- TRUNCATE + COPY, which gives it a new one) and its counts of rows ever inserted, updated and
-- deleted (any edit in place). Read in constant time; a statistics reset or a reload of the same
-- file only makes the next build compare the registry row by row, never miss a change.
select
    pg_relation_filenode(division_table.oid)::text
    || ':' || coalesce(stats.n_tup_ins + stats.n_tup_upd + stats.n_tup_del, 0)::text as registry_version
from (select '{{ source("reference", "division") }}'::regclass as oid) as division_table
left join pg_stat_all_tables as stats on division_table.oid = stats.relid
