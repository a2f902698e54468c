/*
 * lua/agent_states.h -- db:agent_states(), the agent state component
 * (agent_states.c): save, load, list and delete one state per agent id,
 * checksummed. Its export section is agent_states_section.h.
 */
#ifndef LLS_LUA_AGENT_STATES_H
#define LLS_LUA_AGENT_STATES_H

#include <lauxlib.h>
#include <lua.h>

/* The store method agent_states, for the Store class core.c assembles. */
extern const luaL_Reg lls_agent_states_db_methods[];

/* Defines the AgentStates class. */
void lls_open_agent_states(lua_State *L);

#endif
