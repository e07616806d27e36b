-- Soft history rule H01 per unit row in force: the staff total against the same unit's in the
-- previous survey year in force. d = |staff − previous|; fires when d > 10 and d > 2 × previous.
-- A NULL operand (an indicator the version lacks, an unknown value) does not fire.
select
    current_year.survey_year,
    current_year.region_code,
    previous_year.staff_total as previous_staff_total,
    coalesce(
        abs(current_year.staff_total - previous_year.staff_total) > 10
        and abs(current_year.staff_total - previous_year.staff_total) > 2 * previous_year.staff_total,
        false
    ) as h01_fires
from {{ ref('core_unit_year_rows') }} as current_year
left join {{ ref('core_unit_year_rows') }} as previous_year
    on
        current_year.region_code = previous_year.region_code
        and current_year.platform_level = previous_year.platform_level
        and current_year.survey_year = previous_year.survey_year + 1
