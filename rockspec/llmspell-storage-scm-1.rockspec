rockspec_format = "3.0"
package = "llmspell-storage"
version = "scm-1"
source = {
   url = "git+https://example.invalid/llmspell-storage.git",
}
description = {
   summary = "Key-value store, HNSW vector collections and export/import for LLM apps",
   detailed = [[
One storage API for Lua programs that work with LLMs: a key-value store over
memory, SQLite and PostgreSQL backends, with tenants, TTL, atomic batches and
transactions. C core, thin pure-Lua front module.
]],
   license = "MIT",
   labels = { "storage", "sqlite", "postgresql", "llm" },
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   SQLITE = { header = "sqlite3.h", library = "sqlite3" },
   PGSQL = { header = "libpq-fe.h", library = "pq" },
   YAJL = { header = "yajl/yajl_parse.h", library = "yajl" },
   OPENSSL = { header = "openssl/evp.h", library = "crypto" },
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
      ["llmspell.storage.cli"] = "lua/llmspell/storage/cli.lua",
      ["llmspell.storage.migrate"] = "lua/llmspell/storage/migrate/init.lua",
      ["llmspell.storage.migrate.common"] = "lua/llmspell/storage/migrate/common.lua",
      ["llmspell.storage.migrate.files"] = "lua/llmspell/storage/migrate/files.lua",
      ["llmspell.storage.migrate.copy"] = "lua/llmspell/storage/migrate/copy.lua",
      ["llmspell.storage.migrate.verify"] = "lua/llmspell/storage/migrate/verify.lua",
      ["llmspell.storage.migrate.dual"] = "lua/llmspell/storage/migrate/dual.lua",
      ["llmspell.storage.migrate.plan"] = "lua/llmspell/storage/migrate/plan.lua",
      ["llmspell.storage.migrate.roundtrip"] = "lua/llmspell/storage/migrate/roundtrip.lua",
      ["llmspell.storage.core"] = {
         sources = {
            "csrc/backend/backend.c", "csrc/backend/config.c", "csrc/backends/memory/kv.c",
            "csrc/backends/memory/map.c", "csrc/backends/memory/memory.c",
            "csrc/backends/memory/store.c", "csrc/backends/memory/vectors.c",
            "csrc/backends/memory/xport.c", "csrc/backends/postgres/conn.c",
            "csrc/backends/postgres/kv.c", "csrc/backends/postgres/postgres.c",
            "csrc/backends/postgres/schema.c", "csrc/backends/postgres/vectors.c",
            "csrc/backends/postgres/wire.c", "csrc/backends/postgres/xport.c",
            "csrc/backends/sqlite/conn.c", "csrc/backends/sqlite/kv.c",
            "csrc/backends/sqlite/open.c", "csrc/backends/sqlite/rowsum.c",
            "csrc/backends/sqlite/schema.c", "csrc/backends/sqlite/sqlite.c",
            "csrc/backends/sqlite/vectors.c", "csrc/backends/sqlite/xport.c",
            "csrc/base/b64.c", "csrc/base/buf.c", "csrc/base/clock.c", "csrc/base/crc32c.c",
            "csrc/base/error.c", "csrc/base/hashidx.c", "csrc/base/limits.c",
            "csrc/base/utf8.c", "csrc/collection/search.c", "csrc/collection/state.c",
            "csrc/lua/args.c", "csrc/lua/class.c", "csrc/lua/collection.c",
            "csrc/lua/collection_read.c", "csrc/lua/collection_write.c", "csrc/lua/core.c",
            "csrc/lua/error.c", "csrc/lua/export.c", "csrc/lua/export_job.c",
            "csrc/lua/export_rows.c", "csrc/lua/import.c", "csrc/lua/import_feed.c",
            "csrc/lua/import_job.c", "csrc/lua/import_parse.c", "csrc/lua/import_rows.c",
            "csrc/lua/kv.c", "csrc/lua/luajson.c", "csrc/lua/luavalue.c", "csrc/lua/records.c",
            "csrc/lua/store.c", "csrc/lua/xport.c", "csrc/value/filter.c", "csrc/value/json.c",
            "csrc/value/json_scan.c", "csrc/value/value.c", "csrc/vector/distance.c",
            "csrc/vector/graph.c", "csrc/vector/hnsw.c", "csrc/vector/scratch.c",
            "csrc/vector/snapshot.c",
         },
         defines = { "_POSIX_C_SOURCE=200809L" },
         libraries = { "sqlite3", "pq", "yajl", "crypto", "pthread", "m" },
         incdirs = { "csrc", "$(SQLITE_INCDIR)", "$(PGSQL_INCDIR)", "$(PGSQL_INCDIR)/postgresql",
                     "$(YAJL_INCDIR)", "$(OPENSSL_INCDIR)" },
         libdirs = { "$(SQLITE_LIBDIR)", "$(PGSQL_LIBDIR)", "$(YAJL_LIBDIR)",
                     "$(OPENSSL_LIBDIR)" },
      },
   },
}
test_dependencies = {
   "busted",
}
test = {
   type = "busted",
}
