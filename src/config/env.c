#include "config/env.h"

#include <stdlib.h>

#include "config/walk.h"

int
sl_config_env_apply(struct sl_config_ctx *c)
{
    for (size_t i = 0; i < SL_CONFIG_NTOP; i++) {
        const struct sl_config_key *k = &sl_config_top_keys[i];
        if (k->flags & SL_KEY_NOENV)
            continue;
        const char *v = getenv(c->envname[i]);
        if (v == NULL || *v == '\0')
            continue;
        struct sl_config_origin o = {NULL, c->envname[i]};
        if (sl_config_set_scalar(c, k, k->path, o, v, false, c->cfg) != 0)
            return -1;
        c->top_env[i] = true;
    }
    if (!c->top_env[sl_config_top_index("auth.jwt.secret")]) {
        const char *v = getenv(c->cfg->jwt.secret_env);
        if (v != NULL && *v != '\0')
            sl_config_replace_str(&c->cfg->jwt.secret, v);
    }
    return 0;
}
