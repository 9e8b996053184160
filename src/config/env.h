/*
 * The environment pass of the configuration loader, run after the file.
 *
 * Every top-level scalar key may be given as SLUICE_<PATH> (limits.max_connections ->
 * SLUICE_LIMITS_MAX_CONNECTIONS, its name in c->envname); a list as comma-separated
 * items. A variable wins over the file and is remembered (c->top_env), so that a later
 * rule's message names the variable, not the file line. Then the JWT secret is read from
 * the variable auth.jwt.secret_env names, unless SLUICE_AUTH_JWT_SECRET was given itself.
 * Empty variables count as unset, as docker-compose and systemd often leave them.
 * Entry sections (providers, models, agents, API keys) are file only.
 *
 * Reads getenv(): run before threads start, as sl_config_load says.
 */
#ifndef SL_CONFIG_ENV_H
#define SL_CONFIG_ENV_H

#include "config/ctx.h"

/* Applies the environment to c->cfg. Returns 0, or -1 (after sl_config_fail) on a bad value. */
int sl_config_env_apply(struct sl_config_ctx *c);

#endif
