/*
 * schema.h -- the PostgreSQL backend's schema and SQL: its versioned
 * migrations and every statement it prepares (texts in schema.c, which is
 * where the tables, their row-level security and the reasons for both are
 * documented). In every text "@S" stands for the quoted schema name
 * (lls_pg_fill_schema), and $1 is the tenant.
 */
#ifndef LLS_BACKENDS_POSTGRES_SCHEMA_H
#define LLS_BACKENDS_POSTGRES_SCHEMA_H

#include "backends/postgres/wire.h"

/* ------------------------------------------------------------ statements */

enum {
  ST_GET,
  ST_SET,
  ST_DEL,
  ST_GET_MANY,
  ST_SCAN_GE,
  ST_SCAN_GT,
  ST_SCAN_GE_U,
  ST_SCAN_GT_U,
  ST_APPLY,
  ST_CLEAR,
  ST_STATS,
  ST_SWEEP,
  ST_MIGRATIONS,
  ST_COLL_CREATE,
  ST_COLL_GET,
  ST_COLL_LIST,
  ST_COLL_LIST_U,
  ST_COLL_DROP,
  ST_COLL_SEQ,
  ST_COLL_BUMP,
  ST_COLL_FLOOR,
  ST_VEC_INSERT,
  ST_VEC_UPSERT,
  ST_VEC_DELETE,
  ST_VEC_LOAD_ALL,
  ST_VEC_LOAD_SINCE,
  ST_SNAP_LOCK,
  ST_SNAP_CLEAR,
  ST_SNAP_PART,
  ST_SNAP_PRUNE,
  ST_SNAP_LOAD,
  ST_KV_DUMP_FIRST,
  ST_KV_DUMP,
  ST_KV_LOAD_REPLACE,
  ST_KV_LOAD_SKIP,
  ST_VEC_DUMP,
  ST_VEC_HAS,
  ST_SEC_PUT,
  ST_SEC_DUMP,
  ST_SEC_CLEAR,
  ST_SEC_CLEAR_ALL,
  ST_CHECK_COUNTS,
  ST_CHECK_RLS,
  ST_COUNT
};

/* pg_backend.prepared has one bit per statement. */
_Static_assert(ST_COUNT <= 64, "too many statements for the prepared bitmask");

typedef struct pg_stmt {
  const char *name;
  const char *sql; /* "@S" stands for the quoted schema name */
  int nparams;
  Oid types[MAX_PARAMS];
} pg_stmt;

/* The statements, indexed by ST_*, prepared per connection on first use. */
extern const pg_stmt lls_pg_stmts[ST_COUNT];

/* The cursors ST_VEC_LOAD_* and ST_SNAP_LOAD declare, and what one FETCH
 * takes from each: FETCH_ROWS rows of a change stream (a few MB of 768-d
 * vectors), one snapshot part. */
#define VEC_CURSOR "lls_vload"
#define SNAP_CURSOR "lls_sload"
#define FETCH_ROWS 1000
#define FETCH_ROWS_SQL "FETCH 1000 FROM " VEC_CURSOR
#define FETCH_PART_SQL "FETCH 1 FROM " SNAP_CURSOR

/* ------------------------------------------------------------ migrations */

typedef struct pg_migration {
  int version;
  const char *name;
  const char *sql; /* "@S" stands for the quoted schema name */
} pg_migration;

/* The migrations in order, versions 1..lls_pg_n_migrations. */
extern const pg_migration lls_pg_migration_scripts[];
extern const int lls_pg_n_migrations;

/* SQL the connection sends outside the prepared statements: the session's
 * tenant (bound as $1, since tenant ids may contain quotes or SQL), and the
 * migration runner's table, version read and record. */
#define SQL_SET_TENANT "SELECT set_config('app.current_tenant_id', $1, false)"
#define SQL_MIGRATIONS_TABLE                                                     \
  "CREATE SCHEMA IF NOT EXISTS @S;"                                              \
  "CREATE TABLE IF NOT EXISTS @S.llmspell_migrations ("                          \
  " version int PRIMARY KEY, name text NOT NULL,"                                \
  " applied_at timestamptz NOT NULL DEFAULT now())"
#define SQL_SCHEMA_VERSION "SELECT coalesce(max(version), 0) FROM @S.llmspell_migrations"
#define SQL_RECORD_MIGRATION                                                     \
  "INSERT INTO @S.llmspell_migrations (version, name) VALUES ($1::int4, $2)"

/* Arbitrary first half of the advisory lock key; the second is a hash of
 * the schema name, so two schemas migrate independently. */
#define MIGRATION_LOCK_CLASS 0x6C6C6D73 /* "llms" */
/* A printf format: MIGRATION_LOCK_CLASS, then the schema name as $1. */
#define SQL_MIGRATION_LOCK "SELECT pg_advisory_xact_lock(%d, hashtext($1))"

/* tmpl with every "@S" replaced by the double-quoted schema (validated, so
 * quoting needs no escaping; quoting keeps its case and allows keywords).
 * The result is malloc'd (the caller frees it); NULL when out of memory. */
char *lls_pg_fill_schema(const char *tmpl, const char *schema);

#endif
