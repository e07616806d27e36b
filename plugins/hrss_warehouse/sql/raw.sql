-- The submission registry of schema raw, created by the loader role. Idempotent.
-- One row per received file and form; dbt derives the return in force from outcome, revision and
-- received_at, so no in-force flag is stored here.
CREATE TABLE IF NOT EXISTS raw.submission (
    submission_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256 text NOT NULL,
    size_bytes bigint NOT NULL,
    file_name text NOT NULL,
    county_code text,
    survey_year integer,
    form text,
    revision integer,
    received_at timestamptz NOT NULL,
    form_version text,
    outcome text NOT NULL DEFAULT 'pending' CHECK (outcome IN ('accepted', 'quarantined', 'pending')),
    failed_rules text[] NOT NULL DEFAULT '{}',
    soft_flags text[] NOT NULL DEFAULT '{}',
    archived_path text NOT NULL,
    registered_at timestamptz NOT NULL DEFAULT now(),
    checked_at timestamptz,
    -- an unreadable file has one row with a NULL form: NULLS NOT DISTINCT keeps it single too
    CONSTRAINT submission_sha256_form_key UNIQUE NULLS NOT DISTINCT (sha256, form)
);
CREATE INDEX IF NOT EXISTS submission_county_year ON raw.submission (survey_year, county_code, form);

-- Every scan of a landing folder that registered files (or found none): a file's received time is
-- its modification time clamped between the previous scan of its folder and the scan that found it.
CREATE TABLE IF NOT EXISTS raw.landing_scan (
    scan_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    landing text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    -- an Airflow retry of the register task records its scan once
    CONSTRAINT landing_scan_once UNIQUE (landing, started_at)
);

-- Every arrival of a file, re-sends included.
CREATE TABLE IF NOT EXISTS raw.receipt (
    receipt_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256 text NOT NULL,
    file_name text NOT NULL,
    received_at timestamptz NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    stored_path text NOT NULL
);
CREATE INDEX IF NOT EXISTS receipt_sha256 ON raw.receipt (sha256);
-- Where and when it arrived: the scan that found it, the sender's modification time, whether that
-- time stands alone (the first scan of a landing folder), and the landing sub-folder it sat in.
ALTER TABLE raw.receipt
    ADD COLUMN IF NOT EXISTS scan_id bigint REFERENCES raw.landing_scan (scan_id),
    ADD COLUMN IF NOT EXISTS modified_at timestamptz,
    ADD COLUMN IF NOT EXISTS first_scan boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS landing_subfolder text;

-- Footer names and phone numbers: personal data, readable by the loader alone.
CREATE TABLE IF NOT EXISTS raw.submission_contact (
    submission_id bigint NOT NULL REFERENCES raw.submission (submission_id),
    role text NOT NULL,
    name text,
    phone text,
    PRIMARY KEY (submission_id, role)
);
-- The default privileges of schema raw grant dbt SELECT on every new table; not on this one.
REVOKE ALL ON raw.submission_contact FROM hrss_transformer, bi_reader, PUBLIC;

-- What the edit checks found, per submission: the feedback report reads it back.
CREATE TABLE IF NOT EXISTS raw.submission_finding (
    submission_id bigint NOT NULL REFERENCES raw.submission (submission_id),
    seq integer NOT NULL,
    rule_id text NOT NULL,
    form text,
    sheet text,
    excel_row integer,
    column_code text,
    value text,
    params jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (submission_id, seq)
);
