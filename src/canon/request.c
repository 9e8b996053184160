#include "canon/request.h"

#include <stdlib.h>
#include <string.h>

void
sl_chat_req_free(struct sl_chat_req *r)
{
    if (r == NULL)
        return;
    free(r->id);
    free(r->model);
    free(r->agent);
    free(r->system);
    json_decref(r->messages);
    json_decref(r->tools);
    json_decref(r->tool_choice);
    json_decref(r->stop);
    json_decref(r->metadata);
    free(r);
}

/* The text of a message's content: a string, or the first text part of an array. */
static const char *
content_text(json_t *content, size_t *len)
{
    if (json_is_string(content)) {
        *len = json_string_length(content);
        return json_string_value(content);
    }
    if (json_is_array(content)) {
        size_t i;
        json_t *part;
        json_array_foreach(content, i, part)
        {
            json_t *text = json_object_get(part, "text");
            if (json_is_string(text)) {
                *len = json_string_length(text);
                return json_string_value(text);
            }
        }
    }
    *len = 0;
    return "";
}

const char *
sl_chat_req_last_user_text(const struct sl_chat_req *r, size_t *len)
{
    size_t n = json_array_size(r->messages);
    for (size_t i = n; i > 0; i--) {
        json_t *m = json_array_get(r->messages, i - 1);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && strcmp(role, "user") == 0)
            return content_text(json_object_get(m, "content"), len);
    }
    *len = 0;
    return "";
}

size_t
sl_chat_req_text_chars(const struct sl_chat_req *r)
{
    size_t total = r->system ? strlen(r->system) : 0;
    size_t i;
    json_t *m;
    json_array_foreach(r->messages, i, m)
    {
        json_t *content = json_object_get(m, "content");
        if (json_is_string(content)) {
            total += json_string_length(content);
        } else if (json_is_array(content)) {
            size_t j;
            json_t *part;
            json_array_foreach(content, j, part)
            {
                json_t *text = json_object_get(part, "text");
                if (json_is_string(text))
                    total += json_string_length(text);
            }
        }
    }
    return total;
}
