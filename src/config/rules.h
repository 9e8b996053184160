/*
 * The rules of the configuration that span keys, run last, once the file and the
 * environment are applied (so that a rule sees every value, wherever it came from):
 *
 *   - without a `providers:` section: the demo provider plus one provider per kind whose
 *     variable is set (OPENAI_API_KEY, ANTHROPIC_API_KEY, GEMINI_API_KEY, OLLAMA_HOST);
 *     without a `models:` section: each provider's default models (keys.c);
 *   - providers: trailing '/' of base_url dropped, base_url required but for demo, the
 *     key read from api_key_env unless api_key was given (a missing key is no error: the
 *     provider answers UPSTREAM_AUTH), ca_file readable and holding PEM certificates;
 *   - references: a model's provider, fallbacks and agents' models exist, default_model
 *     is a model, fallbacks form no cycle (the message shows the cycle);
 *   - heartbeat.timeout longer than heartbeat.interval;
 *   - auth: an RS* / ES* algorithm needs auth.jwt.public_key_file, whose PEM text is read
 *     into jwt.public_key (base/pem.h; what the key is, src/auth checks); an HS* algorithm
 *     without any secret gets a random one (jwt.secret_generated).
 *
 * Messages point at the line (or variable) the offending value came from.
 */
#ifndef SL_CONFIG_RULES_H
#define SL_CONFIG_RULES_H

#include "config/ctx.h"

/* Applies the rules to c->cfg. Returns 0, or -1 after sl_config_fail(). Reads getenv(). */
int sl_config_rules_apply(struct sl_config_ctx *c);

#endif
