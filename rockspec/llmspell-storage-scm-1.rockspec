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
      ["llmspell.storage.cache"] = "lua/llmspell/storage/cache.lua",
      ["llmspell.storage.migrate"] = "lua/llmspell/storage/migrate.lua",
      ["llmspell.storage.router"] = "lua/llmspell/storage/router.lua",
      ["llmspell.storage.tenant"] = "lua/llmspell/storage/tenant.lua",
      ["llmspell.storage.core"] = {
         sources = {
            "csrc/backend/config.c", "csrc/backends/memory/memory.c",
            "csrc/backends/postgres/postgres.c", "csrc/backends/sqlite/sqlite.c",
            "csrc/base/buf.c", "csrc/base/clock.c", "csrc/base/error.c", "csrc/base/hashidx.c",
            "csrc/base/limits.c", "csrc/base/utf8.c", "csrc/collection/search.c",
            "csrc/collection/state.c", "csrc/lua/collection.c", "csrc/lua/core.c",
            "csrc/lua/errors.c", "csrc/lua/export.c", "csrc/lua/import.c", "csrc/lua/kv.c",
            "csrc/lua/luavalue.c", "csrc/value/filter.c", "csrc/value/json.c",
            "csrc/value/value.c", "csrc/vector/distance.c", "csrc/vector/graph.c",
            "csrc/vector/hnsw.c", "csrc/vector/scratch.c", "csrc/vector/snapshot.c",
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
