/*
 * class.c -- defining the library's classes (Store, Collection, Scan,
 * Exporter, ...) the same way, so each binding file states only its
 * methods.
 */
#include <string.h>

#include "lua/class.h"
#include "lua/error.h"

void lls_class_define(lua_State *L, const char *name, const luaL_Reg *const *methods,
                      const luaL_Reg *meta) {
  luaL_newmetatable(L, name); /* creates it with __name, or finds it */
  if (meta != NULL) luaL_setfuncs(L, meta, 0);
  if (methods != NULL) {
    lua_newtable(L);
    for (size_t i = 0; methods[i] != NULL; i++) luaL_setfuncs(L, methods[i], 0);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
}

void *lls_class_new(lua_State *L, const char *name, size_t size, int nuv) {
  void *p = lua_newuserdatauv(L, size, nuv);
  memset(p, 0, size);
  luaL_setmetatable(L, name);
  return p;
}

void *lls_class_scratch(lua_State *L, const char *name, size_t size, lua_CFunction gc) {
  void *p = lua_newuserdatauv(L, size, 0);
  memset(p, 0, size);
  if (luaL_newmetatable(L, name)) {
    lua_pushcfunction(L, gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return p;
}

void *lls_class_check(lua_State *L, int idx, const char *name) {
  return luaL_checkudata(L, idx, name);
}

int lls_class_closed(lua_State *L, const char *what, const char *backend) {
  return lls_raisef(L, backend, LLS_ECLOSED, "%s is closed", what);
}
