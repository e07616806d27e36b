-- Schemas and roles of the warehouse. Idempotent: run by every `hrss warehouse start`.
-- Stage roles are NOLOGIN; the administrative login is a member and acts through SET ROLE, so each
-- stage can write only where it belongs. bi_reader is the one login for BI tools.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hrss_loader') THEN
        CREATE ROLE hrss_loader NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'hrss_transformer') THEN
        CREATE ROLE hrss_transformer NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bi_reader') THEN
        CREATE ROLE bi_reader LOGIN;
    END IF;
    EXECUTE format('GRANT hrss_loader, hrss_transformer TO %I WITH SET TRUE', current_user);
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO hrss_loader, hrss_transformer, bi_reader',
                   current_database());
    -- dbt creates its build schemas (blue/green publishing) itself.
    EXECUTE format('GRANT CREATE ON DATABASE %I TO hrss_transformer', current_database());
END
$$;

ALTER ROLE bi_reader SET search_path = marts;
ALTER ROLE bi_reader SET default_transaction_read_only = on;

CREATE SCHEMA IF NOT EXISTS raw AUTHORIZATION hrss_loader;
CREATE SCHEMA IF NOT EXISTS reference AUTHORIZATION hrss_loader;
CREATE SCHEMA IF NOT EXISTS staging AUTHORIZATION hrss_transformer;
CREATE SCHEMA IF NOT EXISTS intermediate AUTHORIZATION hrss_transformer;
CREATE SCHEMA IF NOT EXISTS marts AUTHORIZATION hrss_transformer;

REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON SCHEMA raw, reference, staging, intermediate FROM PUBLIC;

-- dbt reads what the loader wrote; the restricted contact table revokes this grant for itself.
GRANT USAGE ON SCHEMA raw, reference TO hrss_transformer;
GRANT SELECT ON ALL TABLES IN SCHEMA reference TO hrss_transformer;
ALTER DEFAULT PRIVILEGES FOR ROLE hrss_loader IN SCHEMA reference GRANT SELECT ON TABLES TO hrss_transformer;
ALTER DEFAULT PRIVILEGES FOR ROLE hrss_loader IN SCHEMA raw GRANT SELECT ON TABLES TO hrss_transformer;

-- BI sees the published marts and nothing else; the publish swap repeats these grants.
GRANT USAGE ON SCHEMA marts TO bi_reader;
GRANT SELECT ON ALL TABLES IN SCHEMA marts TO bi_reader;
ALTER DEFAULT PRIVILEGES FOR ROLE hrss_transformer IN SCHEMA marts GRANT SELECT ON TABLES TO bi_reader;

-- Vintages of the published rollup figures (publish.py appends what each publish changed). Never
-- swapped, so the history outlives every build; BI reads it only through views in `marts`.
CREATE SCHEMA IF NOT EXISTS vintage AUTHORIZATION hrss_transformer;
REVOKE ALL ON SCHEMA vintage FROM PUBLIC;
SET ROLE hrss_transformer;
CREATE TABLE IF NOT EXISTS vintage.publication (
    publication_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    published_at   timestamptz NOT NULL,
    invocation_id  text        NOT NULL,
    figures_appended bigint    NOT NULL
);
COMMENT ON TABLE vintage.publication IS 'One row per publish of the marts (publish.py): when, which dbt build';
CREATE TABLE IF NOT EXISTS vintage.figure (
    publication_id bigint           NOT NULL REFERENCES vintage.publication,
    mart           text             NOT NULL,
    survey_year    integer          NOT NULL,
    region_code    text             NOT NULL,
    platform_level text             NOT NULL,
    funding_source text             NOT NULL,
    indicator      text             NOT NULL,
    value          double precision,
    obs_status     text,
    withdrawn      boolean          NOT NULL,
    PRIMARY KEY (mart, survey_year, region_code, platform_level, funding_source, indicator, publication_id)
);
COMMENT ON TABLE vintage.figure IS
    'Rollup figures as each publish changed them (append-only): a figure''s value and status from its '
    'publication until the next row of the same figure; withdrawn = the figure was no longer published';
RESET ROLE;
