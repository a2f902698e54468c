/*
 * fuzz_import.c -- storage.importer's reader (csrc/lua/import*.c) on any
 * bytes, through the Lua API as a script would call it.
 *
 * Each input gets a fresh Lua state (fenced allocator, lua_guard.c) with
 * the module's core opened from this binary and a memory store. The bytes
 * go to importer:from_string twice, as a dry run and for real, and the
 * driver chunk below checks what the documentation promises:
 *   - a dry run writes nothing; it succeeds exactly when the import does;
 *   - a failed import raises an error object (with a code) and leaves the
 *     store as it was (it exports as an empty store does);
 *   - what an import stored exports, and that export imports into a new
 *     store and exports to the same document (apart from exported_at).
 * A broken promise raises "fuzz invariant: ..." out of the chunk, which
 * aborts.
 */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "fuzz.h"
#include "lua_guard.h"

int luaopen_llmspell_storage_core(lua_State *L); /* csrc/lua/core.c */

static const char DRIVER[] =
    "local core, data = ...\n"
    "local function check(ok, what)\n"
    "  if not ok then error('fuzz invariant: ' .. what, 0) end\n"
    "end\n"
    "local function export(db)\n"
    "  local json = core.exporter(db):to_string()\n"
    "  return (json:gsub('\"exported_at\":\"[^\"]*\"', '')), json\n"
    "end\n"
    "local db = core.open('memory')\n"
    "local empty = export(db)\n"
    "local imp = core.importer(db)\n"
    "local dry_ok, dry = pcall(imp.from_string, imp, data, { dry_run = true })\n"
    "check(dry_ok or core.is_error(dry), 'a dry run raised a non-error: ' .. tostring(dry))\n"
    "check(export(db) == empty, 'a dry run wrote')\n"
    "local ok, st = pcall(imp.from_string, imp, data)\n"
    "check(ok or core.is_error(st), 'an import raised a non-error: ' .. tostring(st))\n"
    "check(ok == dry_ok, ('the dry run %s, the import %s: %s'):format(\n"
    "  dry_ok and 'passed' or 'failed', ok and 'passed' or 'failed',\n"
    "  tostring(ok and dry or st)))\n"
    "if not ok then\n"
    "  check(export(db) == empty, 'a failed import left data: ' .. tostring(st))\n"
    "  return\n"
    "end\n"
    "check(type(st) == 'table' and st.total == dry.total, 'dry run and import counted apart')\n"
    "local first, raw = export(db)\n"
    "local copy = core.open('memory')\n"
    "local ok2, err2 = pcall(function() core.importer(copy):from_string(raw) end)\n"
    "check(ok2, 'an export does not import: ' .. tostring(err2))\n"
    "check(export(copy) == first, 'export, import, export changed the document')\n"
    "copy:close()\n"
    "db:close()\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  lua_State *L = fuzz_lua_new();
  int rc = luaL_loadbuffer(L, DRIVER, sizeof DRIVER - 1, "=fuzz_import");
  FUZZ_CHECK(rc == LUA_OK, "the driver chunk does not compile");
  luaL_requiref(L, "llmspell.storage.core", luaopen_llmspell_storage_core, 0);
  lua_pushlstring(L, (const char *)data, size);
  if (lua_pcall(L, 2, 0, 0) != LUA_OK) {
    fprintf(stderr, "%s\n", luaL_tolstring(L, -1, NULL));
    FUZZ_CHECK(0, "the driver raised");
  }
  fuzz_lua_close(L);
  return 0;
}
