/* fuzz_chat_tmpl.c — libFuzzer entry for the chat template interpreter.
 *
 * The input is the template text; it is compiled (also into a too-small
 * buffer, for the out-of-memory paths) and rendered against a fixed
 * conversation with tools, tool calls and content parts. Nothing may crash,
 * hang or touch memory out of bounds; the results must keep the contract:
 * length <= cap and NUL-terminated when shorter, error text NUL-terminated.
 * Odd-length inputs render with the llama.cpp flags (mutable lists, string
 * arguments parsed, BOS stripped, enable_thinking). A successful render is
 * repeated without memory reuse and must give the same text.
 *
 *     make build/fuzz/fuzz_chat_tmpl
 *     ./build/fuzz/fuzz_chat_tmpl -max_total_time=60 fuzz/corpus/chat_tmpl
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "chat_tmpl.h"

static const char MSGS[] =
    "[{\"role\":\"system\",\"content\":\"You are helpful.\"},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"Hi \\u00e9\"},{\"type\":\"text\",\"text\":\"there\"}]},"
    "{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"id\":\"call12345\",\"type\":\"function\","
    "\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"location\\\": \\\"Paris\\\"}\"}}]},"
    "{\"role\":\"tool\",\"tool_call_id\":\"call12345\",\"name\":\"get_weather\",\"content\":\"{\\\"t\\\": 22}\"},"
    "{\"role\":\"assistant\",\"content\":\"<think>hmm</think>It is 22.\",\"reasoning_content\":null}]";
static const char TOOLS[] =
    "[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{\"location\":{\"type\":\"string\"},"
    "\"n\":{\"type\":\"integer\",\"enum\":[1,2.5,-3e5,true,null]}},\"required\":[\"location\"]}}}]";
static const char VARS[] = "{\"enable_thinking\":false,\"x\":[1,{\"y\":\"z\"}]}";

#define MEM (1u << 20)
#define OUT (64u << 10)
static char mem[MEM], out[OUT], small[4096];
static volatile unsigned sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256];
    const chat_tmpl *t;
    /* compile into a buffer that is usually too small */
    if (chat_tmpl_compile((const char *)data, size, small, sizeof small, &t, err, sizeof err) < 0) {
        if (strlen(err) >= sizeof err) abort();
    }
    if (chat_tmpl_compile((const char *)data, size, mem, MEM / 2, &t, err, sizeof err) < 0) {
        if (strlen(err) >= sizeof err) abort();
        return 0;
    }
    if (chat_tmpl_size(t) > MEM / 2) abort();
    chat_tmpl_input in;
    memset(&in, 0, sizeof in);
    in.messages_json = MSGS;
    in.messages_len = sizeof MSGS - 1;
    in.tools_json = TOOLS;
    in.tools_len = sizeof TOOLS - 1;
    in.vars_json = VARS;
    in.vars_len = sizeof VARS - 1;
    in.bos_token = "<s>";
    in.eos_token = "</s>";
    in.add_generation_prompt = 1;
    in.flags = (size & 1) ? CHAT_TMPL_LLAMA_CPP | CHAT_TMPL_STRIP_EOS : 0;
    in.now = 1736942400;
    in.max_steps = 200000;   /* keep each run fast */
    size_t used = chat_tmpl_size(t);
    long n = chat_tmpl_render(t, &in, mem + used, MEM - used, out, OUT, err, sizeof err);
    if (n >= 0) {
        if ((size_t)n > OUT) abort();
        if ((size_t)n < OUT && out[n] != 0) abort();
        unsigned h = 0;
        for (long i = 0; i < n; i++) h = h * 31 + (unsigned char)out[i];
        sink ^= h;
        /* memory reuse must not change the result: render again without it */
        static char out2[OUT];
        in.flags |= CHAT_TMPL_NO_REUSE;
        long n2 = chat_tmpl_render(t, &in, mem + used, MEM - used, out2, OUT, err, sizeof err);
        if (n2 >= 0 && (n2 != n || memcmp(out, out2, (size_t)n) != 0)) abort();
    } else if (strlen(err) >= sizeof err) {
        abort();
    }
    return 0;
}
