/*
 * limits.h -- every limit and name rule of the library, once.
 *
 * What the store accepts, its export can write and every backend can hold:
 * each text that crosses the Lua boundary (key, prefix, id, scope, name,
 * tenant, section) is checked here, once, at the boundary (and again by
 * the importer, which is a boundary too). The Lua layer reads the same
 * numbers from `storage.limits` (lua/core.c), so tenant, router and the
 * CLI cannot drift from the core.
 */
#ifndef LLS_BASE_LIMITS_H
#define LLS_BASE_LIMITS_H

#include <stddef.h>

#include "base/buf.h"

/* Key-value keys and prefixes: bytes. PostgreSQL B-tree entries must stay
 * well under 2.7 kB. Keys may be empty. */
#define LLS_MAX_KEY 1024
/* Vector entry ids: 1..LLS_MAX_ID bytes. */
#define LLS_MAX_ID 512
/* Artifacts: names 1..LLS_MAX_ARTIFACT_NAME bytes (file names, titles;
 * mime types, tags and creators follow LLS_MAX_NAME / LLS_MAX_ID), and
 * ids "<session_id>:<sequence>:<content_hash>", at most a session id, a
 * 20-digit sequence and a 64-digit hash. */
#define LLS_MAX_ARTIFACT_NAME 1024
#define LLS_MAX_ARTIFACT_ID (LLS_MAX_ID + 1 + 20 + 1 + 64)
/* Collection names: 1..LLS_MAX_NAME bytes of LLS_NAME_CHARS. */
#define LLS_MAX_NAME 255
/* Scopes: 1..LLS_MAX_SCOPE bytes; "global" when the caller gives none. */
#define LLS_MAX_SCOPE 255
/* Procedural-memory patterns (scope, key, value): the scope follows
 * LLS_MAX_SCOPE (1..), keys 1..LLS_MAX_PATTERN_KEY and values
 * 0..LLS_MAX_PATTERN_VALUE bytes. All three are one primary key and one
 * index entry, which PostgreSQL's B-tree caps near 2.7 kB. */
#define LLS_MAX_PATTERN_KEY 512
#define LLS_MAX_PATTERN_VALUE 1024
/* Hook history: the context of one hook execution, 0..LLS_MAX_HOOK_CONTEXT
 * bytes before compression (it is one blob / bytea, decompressed whole on
 * every read and carried whole in one export record). */
#define LLS_MAX_HOOK_CONTEXT ((size_t)16 << 20)
/* Tenant ids given to storage.open: 1..LLS_MAX_TENANT bytes. */
#define LLS_MAX_TENANT 255
/* storage.tenant ids, which become part of collection names
 * ("tenant_<id>:<name>") and key prefixes: 1..LLS_MAX_TENANT_ID bytes of
 * letters, digits, '_' and '-'. */
#define LLS_MAX_TENANT_ID 64
/* Names of export sections: 1..LLS_MAX_SECTION bytes. */
#define LLS_MAX_SECTION 255
/* Vector dimensions: 1..LLS_MAX_DIM. */
#define LLS_MAX_DIM 4096
/* Results of one search (k): 1..LLS_MAX_K. */
#define LLS_MAX_K 10000
/* HNSW parameters. */
#define LLS_MIN_M 2
#define LLS_MAX_M 128
#define LLS_MAX_EF_CONSTRUCTION 10000
#define LLS_MAX_EF_SEARCH 100000
/* Threads one call may use. */
#define LLS_MAX_THREADS 64
/* A ttl, in seconds (about 3,000 years): anything larger is a mistake. */
#define LLS_MAX_TTL_S 1e11
/* Nesting of a value: metadata, filters, storage.json_encode/json_decode
 * values and every value of an import file, counted in tables (arrays
 * and objects) from the outermost, which is level 1. One limit for Lua
 * tables and JSON text alike, so whatever is stored can be exported and
 * read back. 128 is what rs-llmspell's serde_json writes and reads. */
#define LLS_MAX_DEPTH 128
/* Times (event_time, expires_at, search ranges), in seconds either side
 * of the epoch: finite and within what int64 microseconds hold
 * (9.22e12 s, about 292,000 years). */
#define LLS_MAX_TIME_S 9.2e12
/* Records per backend write of an import or a migration. */
#define LLS_MAX_BATCH 100000

/* The characters of a collection name, as a Lua pattern class and in
 * words (for messages). */
#define LLS_NAME_CHARS "[%w_%-%.:/]"
#define LLS_NAME_CHARS_TEXT "letters, digits and _ - . : /"

/* Why a text fails the rule "min..max bytes of UTF-8 without NUL": NULL
 * when it passes, else a message ("is 1030 bytes, at most 1024 allowed",
 * "must be UTF-8 text without NUL bytes (bad byte at 3)", "must not be
 * empty") written into buf. The caller prefixes what the text is. */
const char *lls_text_problem(lls_str s, size_t min, size_t max, char *buf, size_t cap);

/* 1 when s passes lls_text_problem. */
int lls_text_ok(lls_str s, size_t min, size_t max);

/* Why a collection name fails its rule (1..LLS_MAX_NAME bytes of
 * LLS_NAME_CHARS): NULL when it passes, else a message in buf. */
const char *lls_name_problem(lls_str s, char *buf, size_t cap);

/* 1 when s passes lls_name_problem. */
int lls_name_ok(lls_str s);

#endif
