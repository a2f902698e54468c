/*
 * lua/agent_states_section.h -- the agent state component's export section
 * "agent_state" and its checksum check (agent_states_section.c).
 */
#ifndef LLS_LUA_AGENT_STATES_SECTION_H
#define LLS_LUA_AGENT_STATES_SECTION_H

#include "backend/agent_states.h"
#include "lua/sections.h"

/* 0 when st->state_data hashes (SHA-256) to st->checksum; else
 * LLS_EINTEGRITY naming the agent: the row was damaged, or changed behind
 * the library's back, after it was written. */
int lls_agent_state_verify(const lls_agent_state *st, lls_error *err);

/* The export section "agent_state" (sections.c lists it). */
extern const lls_section_codec lls_agent_states_section;

#endif
