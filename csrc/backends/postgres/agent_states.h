/*
 * agent_states.h -- the PostgreSQL backend's agent state op table
 * (agent_states.c).
 */
#ifndef LLS_BACKENDS_POSTGRES_AGENT_STATES_H
#define LLS_BACKENDS_POSTGRES_AGENT_STATES_H

#include "backend/agent_states.h"

extern const lls_agent_state_ops lls_postgres_agent_state_ops;

#endif
