/*
 * signals.c -- core._signals, the signal guard of llmspell.storage.cli
 * (not a public API). lua5.4 turns the first Ctrl-C into the Lua error
 * "interrupted!" but dies on a second one, and SIGTERM and SIGHUP end the
 * process at once: either way an export's FILE.part stays behind. While a
 * guard is active, SIGINT, SIGTERM and SIGHUP are caught:
 *
 *  - the first makes the Lua code of the guarded thread raise
 *    "interrupted!" at its next step (a count hook, as lua.c does:
 *    lua_sethook is the one Lua call safe in a signal handler), after
 *    removing the registered file; the export or import then stops and
 *    cleans up as on any error, and the tool exits 128 + the signal;
 *  - any further one removes the registered file (unlink is
 *    async-signal-safe) and ends the process by that signal at once, for
 *    an operation that does not come back to Lua code in time.
 *
 * SIGKILL cannot be caught: after `kill -9` the file stays.
 *
 * A process has one set of signal dispositions, so the guard's state is
 * process-wide: the one deliberate exception to "no global mutable
 * state". One guard is active at a time; releasing it (g:release(),
 * __close, __gc, so also lua_close) restores the previous dispositions.
 */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lua/signals.h"

#define GUARD_MT "llmspell.storage.SignalGuard"

static const int SIGS[] = {SIGINT, SIGTERM, SIGHUP};
#define NSIGS ((int)(sizeof SIGS / sizeof SIGS[0]))

/* Process-wide (see the file comment). g_path is written only with the
 * signals blocked, so a handler never sees it half-written. */
static lua_State *volatile g_L;         /* the guarded thread; NULL: no guard */
static volatile sig_atomic_t g_caught;  /* the first signal caught, 0: none */
static char g_path[4096];               /* removed when a signal stops us; "" none */
static struct sigaction g_old[NSIGS];   /* the dispositions to restore */

/* Runs in the guarded thread at its next step after the first signal:
 * removes the registered file, then raises the error lua.c raises. */
static void stop_hook(lua_State *L, lua_Debug *ar) {
  (void)ar;
  lua_sethook(L, NULL, 0, 0);
  if (g_path[0] != '\0') unlink(g_path);
  luaL_error(L, "interrupted!");
}

/* The handler: async-signal-safe calls only. */
static void on_signal(int sig) {
  if (g_caught == 0) {
    g_caught = sig;
    lua_State *L = g_L;
    if (L != NULL) lua_sethook(L, stop_hook, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
    return;
  }
  if (g_path[0] != '\0') unlink(g_path);
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigemptyset(&dfl.sa_mask);
  sigaction(sig, &dfl, NULL);
  raise(sig); /* delivered once the handler returns: the process ends by it */
}

/* Blocks (how = SIG_BLOCK) or restores (SIG_SETMASK with *old) our signals. */
static void mask_signals(int how, sigset_t *old) {
  sigset_t set;
  sigemptyset(&set);
  for (int i = 0; i < NSIGS; i++) sigaddset(&set, SIGS[i]);
  if (how == SIG_BLOCK)
    sigprocmask(SIG_BLOCK, &set, old);
  else
    sigprocmask(SIG_SETMASK, old, NULL);
}

/* Sets the registered file (NULL or "": none). */
static void set_path(const char *path) {
  sigset_t old;
  mask_signals(SIG_BLOCK, &old);
  g_path[0] = '\0';
  if (path != NULL && strlen(path) < sizeof g_path) memcpy(g_path, path, strlen(path) + 1);
  mask_signals(SIG_SETMASK, &old);
}

/* Undoes catch: the old dispositions (first, so no signal finds the
 * guard half gone), no hook left behind, no file. */
static void release(int *active) {
  if (!*active) return;
  *active = 0;
  for (int i = 0; i < NSIGS; i++) sigaction(SIGS[i], &g_old[i], NULL);
  lua_State *T = g_L;
  g_L = NULL;
  if (T != NULL && lua_gethook(T) == stop_hook) lua_sethook(T, NULL, 0, 0);
  set_path(NULL);
}

/** _signals.catch() --> guard
 * Catches SIGINT, SIGTERM and SIGHUP for the calling thread until the
 * guard is released. Raises when another guard is active. */
static int sig_catch(lua_State *L) {
  if (g_L != NULL) return luaL_error(L, "a signal guard is already active");
  int *active = lua_newuserdatauv(L, sizeof *active, 1);
  *active = 0;
  lua_pushthread(L); /* keeps the guarded thread alive as long as the guard */
  lua_setiuservalue(L, -2, 1);
  luaL_setmetatable(L, GUARD_MT);
  g_caught = 0;
  set_path(NULL);
  g_L = L;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  for (int i = 0; i < NSIGS; i++) sigaddset(&sa.sa_mask, SIGS[i]);
  sa.sa_flags = SA_RESTART;
  for (int i = 0; i < NSIGS; i++) sigaction(SIGS[i], &sa, &g_old[i]);
  *active = 1;
  return 1;
}

static int *check_guard(lua_State *L) { return luaL_checkudata(L, 1, GUARD_MT); }

/** guard:remove_on_signal(path | nil)
 * The file removed if a signal stops the process (nil: none). A path of
 * 4096 bytes or more is refused. */
static int guard_remove_on_signal(lua_State *L) {
  int *active = check_guard(L);
  const char *path = luaL_optstring(L, 2, NULL);
  if (path != NULL && strlen(path) >= sizeof g_path)
    return luaL_argerror(L, 2, "path of 4096 bytes or more");
  if (*active) set_path(path);
  return 0;
}

/** guard:caught() --> signal number or nil
 * The first signal caught since the guard was made. */
static int guard_caught(lua_State *L) {
  check_guard(L);
  int sig = (int)g_caught;
  if (sig == 0)
    lua_pushnil(L);
  else
    lua_pushinteger(L, sig);
  return 1;
}

/** guard:release() -- idempotent; also __close and __gc. */
static int guard_release(lua_State *L) {
  release(check_guard(L));
  return 0;
}

void lls_open_signals(lua_State *L) {
  static const luaL_Reg methods[] = {
      {"remove_on_signal", guard_remove_on_signal},
      {"caught", guard_caught},
      {"release", guard_release},
      {NULL, NULL},
  };
  if (luaL_newmetatable(L, GUARD_MT)) {
    luaL_newlib(L, methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, guard_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, guard_release);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
  lua_createtable(L, 0, 3);
  lua_pushcfunction(L, sig_catch);
  lua_setfield(L, -2, "catch");
  lua_pushinteger(L, SIGINT);
  lua_setfield(L, -2, "SIGINT");
  lua_pushinteger(L, SIGTERM);
  lua_setfield(L, -2, "SIGTERM");
  lua_pushinteger(L, SIGHUP);
  lua_setfield(L, -2, "SIGHUP");
  lua_setfield(L, -2, "_signals");
}
