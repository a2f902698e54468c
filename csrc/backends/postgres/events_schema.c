/*
 * events_schema.c -- the PostgreSQL migrations of the event log (11 and
 * 12, listed in schema.c; events.c documents the tables, the partitions
 * and what the functions do). Apart from schema.c to keep that file
 * short; two scripts because C caps one string literal near 4 kB.
 */
#include "backends/postgres/events_schema.h"

/* The row-level security of a table (as schema.c's RLS). */
#define RLS(T)                                                                   \
  "ALTER TABLE @S." T " ENABLE ROW LEVEL SECURITY;"                              \
  "ALTER TABLE @S." T " FORCE ROW LEVEL SECURITY;"                               \
  "CREATE POLICY " T "_tenant_isolation ON @S." T                                \
  " USING (tenant_id = current_setting('app.current_tenant_id', true))"          \
  " WITH CHECK (tenant_id = current_setting('app.current_tenant_id', true));"

/* The partitions and the writes that need them. */
#define EVENT_RLS_SQL                                                            \
  "'ALTER TABLE @S.%1$I ENABLE ROW LEVEL SECURITY;"                              \
  " ALTER TABLE @S.%1$I FORCE ROW LEVEL SECURITY; CREATE POLICY %2$I ON @S.%1$I" \
  " USING (tenant_id = current_setting(''app.current_tenant_id'', true))"        \
  " WITH CHECK (tenant_id = current_setting(''app.current_tenant_id'', true))'"
#define EVENT_HAS(T)                                                             \
  " EXISTS (SELECT 1 FROM pg_class WHERE relname = " T                           \
  " AND relnamespace = '@S'::regnamespace)"
#define EVENT_FUNCTIONS                                                          \
  "CREATE FUNCTION @S.lls_event_rls(t text) RETURNS void LANGUAGE plpgsql AS $f$"\
  " BEGIN EXECUTE format(" EVENT_RLS_SQL ", t, t || '_tenant_isolation'); END $f$;"\
  "CREATE FUNCTION @S.lls_event_partitions(p_tenant text, p_stamps timestamptz[])"\
  " RETURNS void LANGUAGE plpgsql AS $f$ DECLARE m timestamp; mon text; leaf text;"\
  " locked boolean := false; BEGIN"                                              \
  " FOR m IN SELECT DISTINCT date_trunc('month', s AT TIME ZONE 'UTC')"          \
  " FROM unnest(p_stamps) s LOOP"                                                \
  " mon := 'event_log_' || to_char(m, 'YYYY_MM');"                               \
  " leaf := mon || '_' || left(md5(p_tenant), 16);"                              \
  " CONTINUE WHEN" EVENT_HAS("leaf") ";"                                         \
  " IF NOT locked THEN PERFORM pg_advisory_xact_lock(hashtext('@S.event_log'));" \
  " locked := true; CONTINUE WHEN" EVENT_HAS("leaf") "; END IF;"                 \
  " IF NOT" EVENT_HAS("mon") " THEN EXECUTE format('CREATE TABLE @S.%I PARTITION"\
  " OF @S.event_log FOR VALUES FROM (%L) TO (%L) PARTITION BY LIST (tenant_id)',"\
  " mon, m AT TIME ZONE 'UTC', (m + interval '1 month') AT TIME ZONE 'UTC');"    \
  " PERFORM @S.lls_event_rls(mon); END IF;"                                      \
  " EXECUTE format('CREATE TABLE @S.%I PARTITION OF @S.%I FOR VALUES IN (%L)',"  \
  " leaf, mon, p_tenant); PERFORM @S.lls_event_rls(leaf); END LOOP; END $f$;"    \
  "CREATE FUNCTION @S.lls_event_bump(p_tenant text, p_n bigint) RETURNS bigint"  \
  " LANGUAGE sql AS $f$ INSERT INTO @S.event_log_sequences AS q VALUES"          \
  " (p_tenant, p_n) ON CONFLICT (tenant_id) DO UPDATE SET"                       \
  " last_sequence = q.last_sequence + p_n RETURNING last_sequence $f$;"          \
  "CREATE FUNCTION @S.lls_event_append(p_tenant text, p_ids text[],"             \
  " p_types text[], p_corrs text[], p_stamps timestamptz[], p_langs text[],"     \
  " p_data text[]) RETURNS bigint LANGUAGE plpgsql AS $f$"                       \
  " DECLARE n bigint := cardinality(p_ids); last bigint; BEGIN"                  \
  " PERFORM @S.lls_event_partitions(p_tenant, p_stamps);"                        \
  " last := @S.lls_event_bump(p_tenant, n);"                                     \
  " INSERT INTO @S.event_log SELECT p_tenant, last - n + r.o, r.i, r.t, r.c,"    \
  " r.s, r.l, r.d::jsonb FROM unnest(p_ids, p_types, p_corrs, p_stamps, p_langs,"\
  " p_data) WITH ORDINALITY AS r(i, t, c, s, l, d, o);"                          \
  " RETURN last - n + 1; END $f$;"

/* Import's one record and cleanup_before (a second script: C caps one
 * string literal near 4 kB). */
#define EVENT_MAINTENANCE                                                        \
  "CREATE FUNCTION @S.lls_event_put(p_tenant text, p_id text, p_type text,"      \
  " p_corr text, p_stamp timestamptz, p_lang text, p_data text, p_seq bigint,"   \
  " p_mode int) RETURNS int LANGUAGE plpgsql AS $f$ DECLARE old bigint;"         \
  " s bigint := p_seq; BEGIN SELECT e.sequence INTO old FROM @S.event_log e"     \
  " WHERE e.tenant_id = p_tenant AND e.timestamp = p_stamp AND e.event_id = p_id"\
  " LIMIT 1; IF FOUND THEN IF p_mode <> 0 THEN RETURN p_mode; END IF;"           \
  " DELETE FROM @S.event_log e WHERE e.tenant_id = p_tenant"                     \
  " AND e.timestamp = p_stamp AND e.sequence = old; END IF;"                     \
  " PERFORM @S.lls_event_partitions(p_tenant, ARRAY[p_stamp]); IF s > 0 THEN"    \
  " INSERT INTO @S.event_log_sequences AS q VALUES (p_tenant, s) ON CONFLICT"    \
  " (tenant_id) DO UPDATE SET last_sequence = greatest(q.last_sequence, s);"     \
  " IF EXISTS (SELECT 1 FROM @S.event_log e WHERE e.tenant_id = p_tenant"        \
  " AND e.sequence = s) THEN s := 0; END IF; END IF;"                            \
  " IF s = 0 THEN s := @S.lls_event_bump(p_tenant, 1); END IF;"                  \
  " INSERT INTO @S.event_log VALUES (p_tenant, s, p_id, p_type, p_corr, p_stamp,"\
  " p_lang, p_data::jsonb); RETURN 0; END $f$;"                                  \
  "CREATE FUNCTION @S.lls_event_cleanup(p_tenant text, p_before timestamptz)"    \
  " RETURNS bigint LANGUAGE plpgsql AS $f$ DECLARE mon text; leaf text;"         \
  " n bigint; total bigint := 0; BEGIN"                                          \
  " PERFORM pg_advisory_xact_lock(hashtext('@S.event_log'));"                    \
  " FOR mon IN SELECT c.relname FROM pg_inherits i JOIN pg_class c"              \
  " ON c.oid = i.inhrelid WHERE i.inhparent = '@S.event_log'::regclass LOOP"     \
  " CONTINUE WHEN (to_date(substr(mon, 11, 7), 'YYYY_MM') + interval '1 month')" \
  " AT TIME ZONE 'UTC' > p_before;"                                              \
  " leaf := mon || '_' || left(md5(p_tenant), 16);"                              \
  " CONTINUE WHEN NOT" EVENT_HAS("leaf") ";"                                     \
  " EXECUTE format('SELECT count(*) FROM @S.%I', leaf) INTO n;"                  \
  " EXECUTE format('ALTER TABLE @S.%I DETACH PARTITION @S.%I', mon, leaf);"      \
  " EXECUTE format('DROP TABLE @S.%I', leaf); total := total + n;"               \
  " IF NOT EXISTS (SELECT 1 FROM pg_inherits WHERE inhparent ="                  \
  " ('@S.' || mon)::regclass) THEN EXECUTE format('DROP TABLE @S.%I', mon);"     \
  " END IF; END LOOP;"                                                           \
  " DELETE FROM @S.event_log WHERE tenant_id = p_tenant AND timestamp < p_before;"\
  " GET DIAGNOSTICS n = ROW_COUNT; RETURN total + n; END $f$;"

const char lls_pg_event_log_sql[] =
     "CREATE TABLE @S.event_log (tenant_id text NOT NULL,"
     " sequence bigint NOT NULL CHECK (sequence > 0), event_id text NOT NULL,"
     " event_type text COLLATE \"C\" NOT NULL, correlation_id text,"
     " timestamp timestamptz NOT NULL, language text NOT NULL, payload jsonb NOT NULL)"
     " PARTITION BY RANGE (timestamp);"
     "CREATE INDEX event_log_time_idx ON @S.event_log (tenant_id, timestamp);"
     "CREATE INDEX event_log_correlation_idx ON @S.event_log (tenant_id, correlation_id);"
     "CREATE INDEX event_log_type_idx ON @S.event_log (tenant_id, event_type, timestamp);"
     "CREATE INDEX event_log_sequence_idx ON @S.event_log (tenant_id, sequence);"
     "CREATE TABLE @S.event_log_sequences (tenant_id text PRIMARY KEY,"
     " last_sequence bigint NOT NULL);"
    RLS("event_log") RLS("event_log_sequences") EVENT_FUNCTIONS;

const char lls_pg_event_maintenance_sql[] = EVENT_MAINTENANCE;
