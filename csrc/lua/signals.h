/*
 * lua/signals.h -- the command-line tool's signal guard, core._signals
 * (signals.c): SIGINT, SIGTERM and SIGHUP stop the running Lua code with
 * an error, and a file registered with the guard is removed even when the
 * process is ended by a further signal.
 */
#ifndef LLS_LUA_SIGNALS_H
#define LLS_LUA_SIGNALS_H

#include <lua.h>

/* Sets `_signals` (a table with `catch`) in the module table at the top
 * of the stack. */
void lls_open_signals(lua_State *L);

#endif
