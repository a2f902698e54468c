/*
 * agent_states.h -- the SQLite backend's agent state op table
 * (agent_states.c), which also serves the memory backend's components.
 */
#ifndef LLS_BACKENDS_SQLITE_AGENT_STATES_H
#define LLS_BACKENDS_SQLITE_AGENT_STATES_H

#include "backend/agent_states.h"

extern const lls_agent_state_ops lls_sqlite_agent_state_ops;

#endif
