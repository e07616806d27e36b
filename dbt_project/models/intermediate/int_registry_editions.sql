-- A small table, computed once per build: several models and tests read it, and as a view each
-- would scan the 1.1 M-row registry again.
{{ config(materialized='table', post_hook='analyze {{ this }}') }}
-- The first and newest registry editions held: survey years outside them use the nearest one.
select
    min(first_year) as first_edition_year,
    max(last_year) as last_edition_year
from {{ ref('stg_reference__divisions') }}
