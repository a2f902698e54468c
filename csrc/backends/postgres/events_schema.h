/*
 * events_schema.h -- the PostgreSQL migration scripts of the event log
 * (events_schema.c), for schema.c's list.
 */
#ifndef LLS_BACKENDS_POSTGRES_EVENTS_SCHEMA_H
#define LLS_BACKENDS_POSTGRES_EVENTS_SCHEMA_H

/* Migration 11, "event_log": the tables, their RLS, the write functions. */
extern const char lls_pg_event_log_sql[];

/* Migration 12, "event_log_maintenance": lls_event_put, lls_event_cleanup. */
extern const char lls_pg_event_maintenance_sql[];

#endif
