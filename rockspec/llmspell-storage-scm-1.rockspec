rockspec_format = "3.0"
package = "llmspell-storage"
version = "scm-1"
source = {
   url = "git+https://example.invalid/llmspell-storage.git",
}
description = {
   summary = "Key-value, HNSW vectors, sessions/artifacts/agent state and export for LLM apps",
   detailed = [[
One storage API for Lua 5.4 programs that work with LLMs, over memory, SQLite
and PostgreSQL backends:

- key-value: byte-exact values, tenants (row-level security on PostgreSQL),
  TTL, ordered prefix listing and streaming scans, atomic batches, nested
  transactions;
- vector collections: an HNSW index with metadata filters, scopes, time
  ranges and TTL, persisted in SQLite or PostgreSQL, reopened from a
  checksummed snapshot;
- storage components in the same transactions: sessions, content-addressed
  artifacts (SHA-256, deduplicated, LZ4-compressed chunks, streamed),
  checksummed agent states and workflow states;
- export/import in rs-llmspell's versioned JSON format, streamed in bounded
  memory, all or nothing on import, between any two backends;
- a pure-Lua layer: tenant-bound handles with quotas, a read cache,
  routing by embedding dimension, migration recipes (copy, verify, dual
  writes);
- the llmspell-storage command (info, export, import, migrate, validate).

A C core does the work (it links SQLite, libpq, yajl, OpenSSL's
libcrypto and liblz4). Debian: apt-get install liblua5.4-dev libsqlite3-dev
libpq-dev libyajl-dev libssl-dev liblz4-dev, then luarocks --lua-version 5.4
make.
]],
   homepage = "https://example.invalid/llmspell-storage",
   license = "MIT",
   labels = { "storage", "sqlite", "postgresql", "vector", "hnsw", "llm" },
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   SQLITE = { header = "sqlite3.h", library = "sqlite3" },
   -- The library only: libpq-fe.h lies in include/postgresql/ on Debian
   -- and Ubuntu but directly in include/ on Fedora, Arch, Alpine and
   -- Homebrew, and a rockspec header check takes one path. The build
   -- searches both (incdirs below); a missing header is a compile error
   -- naming libpq-fe.h (Debian: libpq-dev).
   PGSQL = { library = "pq" },
   YAJL = { header = "yajl/yajl_parse.h", library = "yajl" },
   OPENSSL = { header = "openssl/evp.h", library = "crypto" },
   LZ4 = { header = "lz4.h", library = "lz4" },
}
build = {
   type = "builtin",
   modules = {
      ["llmspell.storage"] = "lua/llmspell/storage/init.lua",
      ["llmspell.storage.filter"] = "lua/llmspell/storage/filter.lua",
      ["llmspell.storage.wrapper"] = "lua/llmspell/storage/wrapper.lua",
      ["llmspell.storage.cache"] = "lua/llmspell/storage/cache.lua",
      ["llmspell.storage.tenant"] = "lua/llmspell/storage/tenant.lua",
      ["llmspell.storage.router"] = "lua/llmspell/storage/router.lua",
      ["llmspell.storage.episodic"] = "lua/llmspell/storage/episodic.lua",
      ["llmspell.storage.cli"] = "lua/llmspell/storage/cli.lua",
      ["llmspell.storage.set"] = "lua/llmspell/storage/set.lua",
      ["llmspell.storage.migrate"] = "lua/llmspell/storage/migrate/init.lua",
      ["llmspell.storage.migrate.common"] = "lua/llmspell/storage/migrate/common.lua",
      ["llmspell.storage.migrate.files"] = "lua/llmspell/storage/migrate/files.lua",
      ["llmspell.storage.migrate.copy"] = "lua/llmspell/storage/migrate/copy.lua",
      ["llmspell.storage.migrate.verify"] = "lua/llmspell/storage/migrate/verify.lua",
      ["llmspell.storage.migrate.dual"] = "lua/llmspell/storage/migrate/dual.lua",
      ["llmspell.storage.migrate.plan"] = "lua/llmspell/storage/migrate/plan.lua",
      ["llmspell.storage.migrate.roundtrip"] = "lua/llmspell/storage/migrate/roundtrip.lua",
      ["llmspell.storage.migrate.sections"] = "lua/llmspell/storage/migrate/sections.lua",
      ["llmspell.storage.core"] = {
         sources = {
            "csrc/backend/artifacts.c", "csrc/backend/backend.c", "csrc/backend/config.c",
            "csrc/backends/memory/components.c", "csrc/backends/memory/kv.c",
            "csrc/backends/memory/map.c", "csrc/backends/memory/memory.c",
            "csrc/backends/memory/store.c", "csrc/backends/memory/vectors.c",
            "csrc/backends/memory/xport.c", "csrc/backends/postgres/agent_states.c",
            "csrc/backends/postgres/artifacts.c", "csrc/backends/postgres/component.c",
            "csrc/backends/postgres/conn.c", "csrc/backends/postgres/events.c",
            "csrc/backends/postgres/events_schema.c", "csrc/backends/postgres/graph.c",
            "csrc/backends/postgres/hook_history.c", "csrc/backends/postgres/kv.c",
            "csrc/backends/postgres/patterns.c", "csrc/backends/postgres/postgres.c",
            "csrc/backends/postgres/schema.c", "csrc/backends/postgres/sessions.c",
            "csrc/backends/postgres/vec_scan.c", "csrc/backends/postgres/vectors.c",
            "csrc/backends/postgres/wire.c", "csrc/backends/postgres/workflows.c",
            "csrc/backends/postgres/xport.c", "csrc/backends/sqlite/agent_states.c",
            "csrc/backends/sqlite/artifacts.c", "csrc/backends/sqlite/conn.c",
            "csrc/backends/sqlite/events.c", "csrc/backends/sqlite/graph.c",
            "csrc/backends/sqlite/hook_history.c", "csrc/backends/sqlite/kv.c",
            "csrc/backends/sqlite/open.c", "csrc/backends/sqlite/patterns.c",
            "csrc/backends/sqlite/rowsum.c", "csrc/backends/sqlite/schema.c",
            "csrc/backends/sqlite/sessions.c", "csrc/backends/sqlite/sqlite.c",
            "csrc/backends/sqlite/vec_scan.c", "csrc/backends/sqlite/vectors.c",
            "csrc/backends/sqlite/workflows.c", "csrc/backends/sqlite/xport.c",
            "csrc/base/b64.c", "csrc/base/buf.c", "csrc/base/clock.c", "csrc/base/compress.c",
            "csrc/base/crc32c.c", "csrc/base/error.c", "csrc/base/hashidx.c",
            "csrc/base/limits.c", "csrc/base/sha256.c", "csrc/base/utf8.c", "csrc/base/uuid.c",
            "csrc/collection/search.c", "csrc/collection/state.c", "csrc/lua/agent_states.c",
            "csrc/lua/agent_states_section.c", "csrc/lua/args.c", "csrc/lua/artifact_reader.c",
            "csrc/lua/artifacts.c", "csrc/lua/artifacts_section.c", "csrc/lua/class.c",
            "csrc/lua/collection.c", "csrc/lua/collection_read.c",
            "csrc/lua/collection_scan.c", "csrc/lua/collection_write.c",
            "csrc/lua/component.c", "csrc/lua/core.c", "csrc/lua/error.c", "csrc/lua/events.c",
            "csrc/lua/events_section.c", "csrc/lua/export.c", "csrc/lua/export_components.c",
            "csrc/lua/export_job.c", "csrc/lua/export_rows.c", "csrc/lua/graph.c",
            "csrc/lua/graph_section.c", "csrc/lua/hook_history.c",
            "csrc/lua/hook_history_section.c", "csrc/lua/import.c", "csrc/lua/import_feed.c",
            "csrc/lua/import_job.c", "csrc/lua/import_parse.c", "csrc/lua/import_rows.c",
            "csrc/lua/kv.c", "csrc/lua/luajson.c", "csrc/lua/luavalue.c",
            "csrc/lua/patterns.c", "csrc/lua/patterns_section.c", "csrc/lua/records.c",
            "csrc/lua/sections.c", "csrc/lua/sessions.c", "csrc/lua/sessions_section.c",
            "csrc/lua/signals.c", "csrc/lua/store.c", "csrc/lua/workflows.c",
            "csrc/lua/workflows_section.c", "csrc/lua/xport.c", "csrc/value/filter.c",
            "csrc/value/json.c", "csrc/value/json_scan.c", "csrc/value/value.c",
            "csrc/vector/cpus.c", "csrc/vector/distance.c", "csrc/vector/graph.c",
            "csrc/vector/hnsw.c", "csrc/vector/scratch.c", "csrc/vector/snapshot.c",
         },
         defines = { "_POSIX_C_SOURCE=200809L" },
         libraries = { "sqlite3", "pq", "yajl", "crypto", "lz4", "pthread", "m" },
         incdirs = { "csrc", "$(SQLITE_INCDIR)", "$(PGSQL_INCDIR)", "$(PGSQL_INCDIR)/postgresql",
                     "$(YAJL_INCDIR)", "$(OPENSSL_INCDIR)", "$(LZ4_INCDIR)" },
         libdirs = { "$(SQLITE_LIBDIR)", "$(PGSQL_LIBDIR)", "$(YAJL_LIBDIR)",
                     "$(OPENSSL_LIBDIR)", "$(LZ4_LIBDIR)" },
      },
   },
   install = {
      bin = { ["llmspell-storage"] = "bin/llmspell-storage" },
   },
}
-- What the specs need beyond the library (spec/packaging_spec.lua checks
-- both lists against the requires): busted, lua-cjson to read JSON
-- independently of the library's codec, luasystem for clocks. The library
-- itself uses luasystem only when present (pcall).
test_dependencies = {
   "busted",
   "lua-cjson",
   "luasystem",
}
test = {
   type = "busted",
}
