select
    submission_id::bigint as submission_id,
    sha256::text as sha256,
    size_bytes::bigint as size_bytes,
    file_name::text as file_name,
    county_code::text as county_code,
    survey_year::integer as survey_year,
    form::text as form,
    revision::integer as revision,
    received_at::timestamptz as received_at,
    form_version::text as form_version,
    outcome::text as outcome,
    coalesce(failed_rules, '{}')::text [] as failed_rules,
    coalesce(soft_flags, '{}')::text [] as soft_flags,
    archived_path::text as archived_path,
    registered_at::timestamptz as registered_at,
    checked_at::timestamptz as checked_at
from {{ source('raw', 'submission') }}
