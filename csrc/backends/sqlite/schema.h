/*
 * schema.h -- the SQLite backend's migrations and every SQL text it sends
 * (the schema itself is documented at the top of schema.c).
 *
 * Statements run often are cached per handle (conn.c's lls_sqlite_stmt)
 * under an id of the enum below; the few run once per open, or built with
 * a name chosen at run time, are the LLS_SQLITE_* texts and formats.
 */
#ifndef LLS_BACKENDS_SQLITE_SCHEMA_H
#define LLS_BACKENDS_SQLITE_SCHEMA_H

#include <stddef.h>

/* ------------------------------------------------------------ migrations */

/* One schema step: version 1, 2, ... applied in order, recorded under
 * "NNN_name" in llmspell_migrations. */
typedef struct lls_sqlite_migration {
  int version;
  const char *name;
  const char *sql;
} lls_sqlite_migration;

/* Columns a migration adds to an existing table, before its script runs
 * (see lls_sqlite_add_columns). */
typedef struct lls_sqlite_add_column {
  int version;
  const char *table, *column, *type;
} lls_sqlite_add_column;

/* lls_sqlite_nmigrations is also the schema version this library writes. */
extern const lls_sqlite_migration lls_sqlite_migration_scripts[];
extern const int lls_sqlite_nmigrations;
extern const lls_sqlite_add_column lls_sqlite_add_columns[];
extern const size_t lls_sqlite_nadd_columns;

/* The bookkeeping of migrations itself, read and written before the
 * migrations table is known to exist, so these are not cached. */
#define LLS_SQLITE_MIGRATIONS_TABLE                                                  \
  "CREATE TABLE IF NOT EXISTS llmspell_migrations (\n"                               \
  "  version    INTEGER PRIMARY KEY,\n"                                              \
  "  name       TEXT NOT NULL,\n"                                                    \
  "  applied_at INTEGER NOT NULL\n"                                                  \
  ")"
#define LLS_SQLITE_HAS_MIGRATIONS                                                    \
  "SELECT (SELECT count(*) FROM sqlite_master WHERE type = 'table'"                  \
  " AND name = 'llmspell_migrations')"
#define LLS_SQLITE_MAX_VERSION "SELECT coalesce(max(version), 0) FROM llmspell_migrations"
#define LLS_SQLITE_RECORD_MIGRATION                                                  \
  "INSERT INTO llmspell_migrations (version, name, applied_at) VALUES (?1, ?2, ?3)"
/* PRAGMA application_id of every store (from migration 4 on): "LLST". */
#define LLS_SQLITE_APP_ID 0x4C4C5354
/* What open() reads before it writes anything: the file's application_id,
 * how many schema objects it has, and whether one is our bookkeeping
 * table (a store from before migration 4 has no application_id). */
#define LLS_SQLITE_IDENTIFY                                                          \
  "SELECT (SELECT application_id FROM pragma_application_id),"                       \
  " (SELECT count(*) FROM sqlite_master),"                                           \
  " (SELECT count(*) FROM sqlite_master WHERE type = 'table'"                        \
  " AND name = 'llmspell_migrations')"
#define LLS_SQLITE_HAS_COLUMN "SELECT count(*) FROM pragma_table_info(?1) WHERE name = ?2"
#define LLS_SQLITE_ADD_COLUMN_FMT "ALTER TABLE %s ADD COLUMN %s %s"

/* -------------------------------------------------- pragmas, savepoints */

#define LLS_SQLITE_WAL "PRAGMA journal_mode = WAL"
#define LLS_SQLITE_SYNCHRONOUS_FMT "PRAGMA synchronous = %s"
#define LLS_SQLITE_CACHE_SIZE_FMT "PRAGMA cache_size = %lld"
#define LLS_SQLITE_MMAP_SIZE_FMT "PRAGMA mmap_size = %lld"
#define LLS_SQLITE_INTEGRITY_CHECK "PRAGMA integrity_check"
#define LLS_SQLITE_QUICK_CHECK "PRAGMA quick_check"
/* The caller's nested transactions: one savepoint per depth d > 0. */
#define LLS_SQLITE_SAVEPOINT_FMT "SAVEPOINT lls_%d"
#define LLS_SQLITE_RELEASE_FMT "RELEASE lls_%d"
#define LLS_SQLITE_ROLLBACK_TO_FMT "ROLLBACK TO lls_%d"

/* ------------------------------------------------------------ statements */

/* ?1 is always the handle's tenant. Visibility is spelled out in each
 * statement rather than in a view so the planner sees plain index terms. */
enum {
  ST_BEGIN,
  ST_BEGIN_READ,
  ST_COMMIT,
  ST_ROLLBACK,
  ST_SP_APPLY,
  ST_SP_RELEASE,
  ST_SP_ROLLBACK,
  ST_GET,
  ST_GET_ROW,
  ST_SET,
  ST_DEL,
  ST_SCAN_GE,
  ST_SCAN_GE_LT,
  ST_SCAN_GT,
  ST_SCAN_GT_LT,
  ST_CLEAR,
  ST_STATS,
  ST_SWEEP_PROBE,
  ST_SWEEP,
  ST_MIGRATIONS,
  /* vector collections: ?2 is the collection id wherever there is one */
  ST_COLL_CREATE,
  ST_COLL_GET,
  ST_COLL_LIST_GE,
  ST_COLL_LIST_GE_LT,
  ST_COLL_HEAD,
  ST_COLL_STAMP,
  ST_COLL_DELETE,
  ST_VEC_INSERT,
  ST_VEC_UPDATE,
  ST_VEC_DELETE,
  ST_VEC_DROP,
  ST_VEC_LOAD_ALL,
  ST_VEC_LOAD_SINCE,
  ST_TOMB_PUT,
  ST_TOMB_FLOOR,
  ST_TOMB_PRUNE,
  ST_TOMB_DROP,
  ST_SNAP_SEQ,
  ST_SNAP_SIZE,
  ST_SNAP_PART,
  ST_SNAP_READ,
  ST_SNAP_DROP,
  /* export/import */
  ST_KV_DUMP,
  ST_KV_DUMP_AFTER,
  ST_KV_LOAD_REPLACE,
  ST_KV_LOAD_INSERT,
  ST_VEC_DUMP,
  ST_VEC_DUMP_AFTER,
  ST_VEC_HAS,
  ST_SEC_PUT,
  ST_SEC_DUMP,
  ST_SEC_DUMP_AFTER,
  ST_SEC_CLEAR,
  ST_SEC_CLEAR_ALL,
  ST_COUNT
};

/* The text of each cached statement, by id. */
extern const char *const lls_sqlite_sql[ST_COUNT];

#endif
