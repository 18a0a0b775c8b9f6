/* chat_tmpl.c — a small Jinja2 interpreter for chat templates.
 *
 * Reads top to bottom: arena, values, text helpers, lexer, parser (AST),
 * interpreter (scopes, output sinks, operators, attribute access, filters,
 * tests, methods, globals, statements), input conversion, public API.
 *
 * Semantics follow Python Jinja2 3.1 as Hugging Face configures it (see the
 * header); the Jinja2 documentation and the behaviour of the reference
 * renders in ../shared/templates are the specification. Python details that
 * templates can observe are reproduced: str()/repr() of values, float repr,
 * json.dumps, dict insertion order, per-iteration loop scopes, generators
 * returned by map/select, markupsafe escaping on `Markup + str`.
 *
 * Errors unwind with longjmp: every allocation lives in the arena, so there
 * is nothing to free on the way out, and the evaluator stays readable
 * without an error check after every call.
 *
 * Memory: one bump arena per render. Values are immutable (strings are
 * slices wherever possible: split, strip and slicing copy nothing), so a
 * loop iteration or a printed expression can hand its memory back when it
 * ends, unless it made an older object point at newer memory (a namespace
 * attribute, a mutated list, a growing captured string); see note_ref.
 * Freed memory is poisoned, and the fuzz target renders every input with
 * and without reuse and compares.
 */
#include "chat_tmpl.h"

#include "json.h"

#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * Arena: bump allocation from the bottom (results) and the top (temporary
 * token arrays). Nothing is freed individually.
 * ====================================================================== */

typedef struct arena {
    char *base;
    size_t cap;
    size_t lo;   /* bytes used from the bottom */
    size_t hi;   /* bytes used from the top */
} arena;

static void arena_init(arena *a, void *mem, size_t cap)
{
    /* align the base to 8 so struct allocations are aligned */
    uintptr_t p = (uintptr_t)mem, q = (p + 7u) & ~(uintptr_t)7u;
    size_t skip = (size_t)(q - p);
    a->base = (char *)q;
    a->cap = (cap > skip ? cap - skip : 0) & ~(size_t)7u;   /* top allocations stay aligned */
    a->lo = a->hi = 0;
}

static void *arena_alloc_raw(arena *a, size_t n, size_t align)
{
    size_t off = (a->lo + (align - 1)) & ~(align - 1);
    if (off > a->cap - a->hi || n > a->cap - a->hi - off) return NULL;
    a->lo = off + n;
    return a->base + off;
}

static void *arena_alloc_top(arena *a, size_t n)
{
    size_t room = a->cap - a->hi - a->lo;
    if (n > room) return NULL;
    size_t hi = (a->hi + n + 7u) & ~(size_t)7u;
    if (hi > a->cap - a->lo) return NULL;
    a->hi = hi;
    return a->base + a->cap - a->hi;
}

/* ======================================================================
 * Values
 * ====================================================================== */

enum {
    VT_UNDEF,     /* Jinja2 Undefined; u.s/n = name, for messages */
    VT_NONE,
    VT_BOOL,      /* u.i = 0/1 */
    VT_INT,       /* u.i */
    VT_FLOAT,     /* u.f */
    VT_STR,       /* u.s, n bytes of UTF-8 (not NUL-terminated) */
    VT_LIST,      /* u.l (also tuples, generators, dict views: see flags) */
    VT_DICT,      /* u.d (also namespaces) */
    VT_MACRO,     /* u.m */
    VT_FUNC,      /* u.i = global function id */
    VT_BOUND,     /* u.b: method bound to a value */
    VT_LOOP,      /* u.lp: the `loop` variable */
    VT_ABSENT     /* internal: argument not given */
};

enum {
    VF_MARKUP = 1,  /* str: markupsafe.Markup */
    VF_TUPLE = 2,   /* list: a tuple */
    VF_GEN = 4,     /* list: a generator/iterator (no len, always true) */
    VF_VIEW = 8,    /* list: dict_items/keys/values (len, not subscriptable) */
    VF_NS = 16,     /* dict: namespace() */
    VF_UNSAFE = 32, /* undef: access to an attribute the sandbox forbids */
    VF_MISSING = 64 /* undef: a missing attribute/item of an object whose
                       type is kept in aux (t | fl << 8), for messages */
};

typedef struct vlist vlist;
typedef struct vdict vdict;
typedef struct macro macro;
typedef struct bound bound;
typedef struct loopst loopst;

typedef struct val {
    uint8_t t;       /* VT_* */
    uint8_t fl;      /* VF_* */
    uint16_t aux;    /* VT_BOUND: method id */
    uint32_t n;      /* VT_STR/VT_UNDEF: byte length */
    union {
        int64_t i;
        double f;
        const char *s;
        vlist *l;
        vdict *d;
        macro *m;
        bound *b;
        loopst *lp;
    } u;
} val;

struct vlist {
    uint32_t n, cap;
    uint32_t pos;   /* generators: items already consumed (Python iterators
                       are single-pass; a second loop sees what is left) */
    val *v;
};

struct vdict {
    uint32_t n, cap;
    val *k;   /* keys, insertion order */
    val *v;
};

struct bound {
    val self;
    int method;
};

static val v_undef(const char *name, size_t n)
{
    val v = {0};
    v.t = VT_UNDEF;
    v.u.s = name;
    v.n = (uint32_t)(name ? n : 0);
    return v;
}
static val v_none(void) { val v = {0}; v.t = VT_NONE; return v; }
static val v_absent(void) { val v = {0}; v.t = VT_ABSENT; return v; }
static val v_bool(int b) { val v = {0}; v.t = VT_BOOL; v.u.i = !!b; return v; }
static val v_int(int64_t i) { val v = {0}; v.t = VT_INT; v.u.i = i; return v; }
static val v_float(double f) { val v = {0}; v.t = VT_FLOAT; v.u.f = f; return v; }
static val v_str(const char *s, size_t n)
{
    val v = {0};
    v.t = VT_STR;
    v.u.s = s;
    v.n = (uint32_t)n;
    return v;
}
static val v_cstr(const char *s) { return v_str(s, strlen(s)); }
static val v_list(vlist *l, int fl)
{
    val v = {0};
    v.t = VT_LIST;
    v.fl = (uint8_t)fl;
    v.u.l = l;
    return v;
}
static val v_dict(vdict *d, int fl)
{
    val v = {0};
    v.t = VT_DICT;
    v.fl = (uint8_t)fl;
    v.u.d = d;
    return v;
}

static int is_num(val v) { return v.t == VT_INT || v.t == VT_FLOAT || v.t == VT_BOOL; }
static int is_intlike(val v) { return v.t == VT_INT || v.t == VT_BOOL; }
static double num_f(val v) { return v.t == VT_FLOAT ? v.u.f : (double)v.u.i; }

/* ======================================================================
 * Text helpers (UTF-8, Python's notion of whitespace)
 * ====================================================================== */

/* Decode one code point at s[i] (i < n); invalid bytes decode as themselves
 * (one byte each) so nothing is ever lost. Sets *len to the bytes used. */
static uint32_t utf8_dec(const char *s, size_t n, size_t i, size_t *len)
{
    const unsigned char *p = (const unsigned char *)s + i;
    size_t left = n - i;
    uint32_t c = p[0];
    if (c < 0x80) { *len = 1; return c; }
    if (c >= 0xC2 && c <= 0xDF && left >= 2 && (p[1] & 0xC0) == 0x80) {
        *len = 2;
        return ((c & 0x1Fu) << 6) | (p[1] & 0x3Fu);
    }
    if (c >= 0xE0 && c <= 0xEF && left >= 3 && (p[1] & 0xC0) == 0x80 && (p[2] & 0xC0) == 0x80) {
        uint32_t r = ((c & 0x0Fu) << 12) | ((p[1] & 0x3Fu) << 6) | (p[2] & 0x3Fu);
        if (r >= 0x800) { *len = 3; return r; }
    }
    if (c >= 0xF0 && c <= 0xF4 && left >= 4 && (p[1] & 0xC0) == 0x80 &&
        (p[2] & 0xC0) == 0x80 && (p[3] & 0xC0) == 0x80) {
        uint32_t r = ((c & 0x07u) << 18) | ((p[1] & 0x3Fu) << 12) | ((p[2] & 0x3Fu) << 6) | (p[3] & 0x3Fu);
        if (r >= 0x10000 && r <= 0x10FFFF) { *len = 4; return r; }
    }
    *len = 1;
    return c;
}

/* Start of the code point that ends at s[i-1] (i > 0). */
static size_t utf8_prev(const char *s, size_t i)
{
    size_t j = i - 1, k = 0;
    while (j > 0 && k < 3 && ((unsigned char)s[j] & 0xC0) == 0x80) { j--; k++; }
    size_t len;
    utf8_dec(s, i, j, &len);
    return (j + len == i) ? j : i - 1;
}

static int utf8_enc(uint32_t c, char *o)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* Python's str.isspace() */
static int py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Line boundaries of str.splitlines() */
static int py_linebreak(uint32_t c)
{
    return c == '\n' || c == '\r' || c == 0x0B || c == 0x0C || c == 0x1C || c == 0x1D ||
           c == 0x1E || c == 0x85 || c == 0x2028 || c == 0x2029;
}

static size_t rstrip_ws(const char *s, size_t n)
{
    while (n > 0) {
        size_t j = utf8_prev(s, n), len;
        if (!py_space(utf8_dec(s, n, j, &len))) break;
        n = j;
    }
    return n;
}

static size_t lstrip_ws(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t len;
        if (!py_space(utf8_dec(s, n, i, &len))) break;
        i += len;
    }
    return i;
}

static size_t utf8_count(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n;) {
        size_t len;
        utf8_dec(s, n, i, &len);
        i += len;
        c++;
    }
    return c;
}

static int is_ascii(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] >= 0x80) return 0;
    return 1;
}

static int name_eq(const char *a, size_t an, const char *b)
{
    size_t bn = strlen(b);
    return an == bn && memcmp(a, b, an) == 0;
}

static int is_lower_ascii(int c) { return c >= 'a' && c <= 'z'; }
static int is_upper_ascii(int c) { return c >= 'A' && c <= 'Z'; }
static int to_lower_ascii(int c) { return is_upper_ascii(c) ? c + 32 : c; }
static int to_upper_ascii(int c) { return is_lower_ascii(c) ? c - 32 : c; }

/* ======================================================================
 * Lexer. Works on the normalized source (newlines as "\n", one trailing
 * newline dropped, as Jinja2 does with keep_trailing_newline off).
 * trim_blocks and lstrip_blocks are always on.
 * ====================================================================== */

enum {
    T_EOF, T_DATA, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END,
    T_NAME, T_STRING, T_INT, T_FLOAT, T_OP
};

enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_LBRACKET, OP_RBRACKET, OP_LPAREN, OP_RPAREN, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_GT, OP_GTEQ, OP_LT, OP_LTEQ, OP_ASSIGN, OP_DOT, OP_COLON,
    OP_PIPE, OP_COMMA, OP_SEMICOLON
};

typedef struct tok {
    uint8_t type;
    uint8_t op;
    uint32_t line;
    uint32_t start, len;   /* span in the normalized source */
} tok;

/* Shared by lexer, parser and interpreter: the error exit. */
typedef struct errctx {
    jmp_buf jb;
    int code;
    char *msg;
    size_t msgcap;
} errctx;

__attribute__((noreturn, format(printf, 4, 5)))
static void fail_at(errctx *e, int code, int line, const char *fmt, ...)
{
    if (e->msg && e->msgcap) {
        int k = 0;
        if (line > 0) k = snprintf(e->msg, e->msgcap, "line %d: ", line);
        if (k < 0 || (size_t)k >= e->msgcap) k = 0;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg + k, e->msgcap - (size_t)k, fmt, ap);
        va_end(ap);
    }
    e->code = code;
    longjmp(e->jb, 1);
}

typedef struct lexer {
    errctx *e;
    arena *a;
    const char *s;
    size_t n;
    tok *toks;      /* grows at the arena top */
    int ntok, cap;
    uint32_t line;
} lexer;

static uint32_t line_at(const char *s, size_t from, size_t to, uint32_t line)
{
    for (size_t i = from; i < to; i++)
        if (s[i] == '\n') line++;
    return line;
}

static void lex_push(lexer *L, int type, int op, size_t start, size_t len, uint32_t line)
{
    if (L->ntok == L->cap) {
        /* the token array lives at the top of the arena; grow by moving */
        /* the array is the only allocation at the top: free it and take a
         * bigger block that ends where it ended (memmove handles overlap) */
        int ncap = L->cap ? L->cap * 2 : 256;
        if (ncap <= L->cap || (size_t)ncap > SIZE_MAX / 2 / sizeof(tok))
            fail_at(L->e, CHAT_TMPL_ERR_NOMEM, (int)line, "too many template tokens");
        size_t hi = L->a->hi;
        L->a->hi -= (size_t)L->cap * sizeof(tok);
        tok *nt = arena_alloc_top(L->a, (size_t)ncap * sizeof(tok));
        if (!nt) {
            L->a->hi = hi;
            fail_at(L->e, CHAT_TMPL_ERR_NOMEM, (int)line, "out of memory (template tokens)");
        }
        if (L->ntok) memmove(nt, L->toks, (size_t)L->ntok * sizeof(tok));
        L->toks = nt;
        L->cap = ncap;
    }
    tok *t = &L->toks[L->ntok++];
    t->type = (uint8_t)type;
    t->op = (uint8_t)op;
    t->line = line;
    t->start = (uint32_t)start;
    t->len = (uint32_t)len;
}

static int is_name_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_name_char(int c) { return is_name_start(c) || (c >= '0' && c <= '9'); }
static int is_digit(int c) { return c >= '0' && c <= '9'; }

/* digits with single underscores between them; returns the end or `i` */
static size_t lex_digits(const char *s, size_t n, size_t i)
{
    size_t j = i;
    if (j >= n || !is_digit(s[j])) return i;
    while (j < n) {
        if (is_digit(s[j])) j++;
        else if (s[j] == '_' && j + 1 < n && is_digit(s[j + 1])) j++;
        else break;
    }
    return j;
}

/* Tokens inside {{ }} or {% %}, up to and including the end tag. Returns the
 * position after the end tag (with trim_blocks / '-' whitespace removal). */
static size_t lex_tag(lexer *L, size_t i, int block, int *line_starting)
{
    const char *s = L->s;
    size_t n = L->n;
    int depth = 0;   /* ( [ { balance: end tags only count at depth 0 */
    for (;;) {
        while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v')) {
            if (s[i] == '\n') L->line++;
            i++;
        }
        if (i >= n) fail_at(L->e, CHAT_TMPL_ERR_SYNTAX, (int)L->line,
                            block ? "unexpected end of template (missing '%%}')" : "unexpected end of template (missing '}}')");
        char c = s[i];
        if (depth == 0) {
            char e1 = block ? '%' : '}';
            if (c == '-' && i + 2 < n && s[i + 1] == e1 && s[i + 2] == '}') {
                lex_push(L, block ? T_BLOCK_END : T_VAR_END, 0, i, 3, L->line);
                i += 3;
                size_t k = lstrip_ws(s + i, n - i);
                L->line = line_at(s, i, i + k, L->line);
                *line_starting = k > 0 && s[i + k - 1] == '\n';
                return i + k;
            }
            if (block && c == '+' && i + 2 < n && s[i + 1] == '%' && s[i + 2] == '}') {
                lex_push(L, T_BLOCK_END, 0, i, 3, L->line);
                *line_starting = 0;
                return i + 3;
            }
            if (c == e1 && i + 1 < n && s[i + 1] == '}') {
                lex_push(L, block ? T_BLOCK_END : T_VAR_END, 0, i, 2, L->line);
                i += 2;
                *line_starting = 0;
                if (block && i < n && s[i] == '\n') { i++; L->line++; *line_starting = 1; }
                return i;
            }
        }
        if (is_name_start((unsigned char)c)) {
            size_t j = i + 1;
            while (j < n && is_name_char((unsigned char)s[j])) j++;
            lex_push(L, T_NAME, 0, i, j - i, L->line);
            i = j;
            continue;
        }
        if (c == '0' && i + 2 < n && strchr("xXoObB", s[i + 1]) && !(i > 0 && s[i - 1] == '.')) {
            /* 0x1f, 0o17, 0b101 (single underscores allowed) */
            int base = (s[i + 1] | 32) == 'x' ? 16 : (s[i + 1] | 32) == 'o' ? 8 : 2;
            size_t j = i + 2;
            while (j < n) {
                char d = (char)(s[j] | 32);
                int dv = is_digit(s[j]) ? s[j] - '0' : (d >= 'a' && d <= 'f') ? d - 'a' + 10 : 99;
                if (dv < base) j++;
                else if (s[j] == '_' && j + 1 < n && j > i + 1) j++;
                else break;
            }
            if (j > i + 2) {
                lex_push(L, T_INT, 0, i, j - i, L->line);
                i = j;
                continue;
            }
        }
        if (is_digit(c)) {
            size_t j = lex_digits(s, n, i);
            int isfloat = 0;
            int after_dot = i > 0 && s[i - 1] == '.';
            if (!after_dot) {
                size_t k = j;
                if (k + 1 < n && s[k] == '.' && is_digit(s[k + 1])) {
                    k = lex_digits(s, n, k + 1);
                    isfloat = 1;
                }
                if (k < n && (s[k] == 'e' || s[k] == 'E')) {
                    size_t m = k + 1;
                    if (m < n && (s[m] == '+' || s[m] == '-')) m++;
                    size_t m2 = lex_digits(s, n, m);
                    if (m2 > m) { k = m2; isfloat = 1; }
                }
                if (isfloat) j = k;
            }
            if (!isfloat && c == '0') {   /* no leading zeros: "050" is 0 then 50 */
                j = i + 1;
                while (j < n && (s[j] == '0' || (s[j] == '_' && j + 1 < n && s[j + 1] == '0'))) j++;
            }
            lex_push(L, isfloat ? T_FLOAT : T_INT, 0, i, j - i, L->line);
            i = j;
            continue;
        }
        if (c == '\'' || c == '"') {
            size_t j = i + 1;
            uint32_t l0 = L->line;
            while (j < n && s[j] != c) {
                if (s[j] == '\\' && j + 1 < n) j++;
                if (s[j] == '\n') L->line++;
                j++;
            }
            if (j >= n) fail_at(L->e, CHAT_TMPL_ERR_SYNTAX, (int)l0, "unterminated string literal");
            lex_push(L, T_STRING, 0, i, j + 1 - i, l0);
            i = j + 1;
            continue;
        }
        int op = 0, len = 2;
        char d = i + 1 < n ? s[i + 1] : 0;
        if (c == '/' && d == '/') op = OP_FLOORDIV;
        else if (c == '*' && d == '*') op = OP_POW;
        else if (c == '=' && d == '=') op = OP_EQ;
        else if (c == '!' && d == '=') op = OP_NE;
        else if (c == '>' && d == '=') op = OP_GTEQ;
        else if (c == '<' && d == '=') op = OP_LTEQ;
        else {
            len = 1;
            switch (c) {
            case '+': op = OP_ADD; break;
            case '-': op = OP_SUB; break;
            case '*': op = OP_MUL; break;
            case '/': op = OP_DIV; break;
            case '%': op = OP_MOD; break;
            case '~': op = OP_TILDE; break;
            case '[': op = OP_LBRACKET; depth++; break;
            case ']': op = OP_RBRACKET; depth--; break;
            case '(': op = OP_LPAREN; depth++; break;
            case ')': op = OP_RPAREN; depth--; break;
            case '{': op = OP_LBRACE; depth++; break;
            case '}': op = OP_RBRACE; depth--; break;
            case '>': op = OP_GT; break;
            case '<': op = OP_LT; break;
            case '=': op = OP_ASSIGN; break;
            case '.': op = OP_DOT; break;
            case ':': op = OP_COLON; break;
            case '|': op = OP_PIPE; break;
            case ',': op = OP_COMMA; break;
            case ';': op = OP_SEMICOLON; break;
            default:
                fail_at(L->e, CHAT_TMPL_ERR_SYNTAX, (int)L->line, "unexpected character '%c'",
                        (c >= 32 && c < 127) ? c : '?');
            }
            if (depth < 0) fail_at(L->e, CHAT_TMPL_ERR_SYNTAX, (int)L->line, "unexpected '%c'", c);
        }
        lex_push(L, T_OP, op, i, (size_t)len, L->line);
        i += (size_t)len;
    }
}

static void lex(lexer *L)
{
    const char *s = L->s;
    size_t n = L->n, pos = 0;
    int line_starting = 1;
    L->line = 1;
    for (;;) {
        /* next tag start */
        size_t t = pos;
        while (t + 1 < n && !(s[t] == '{' && (s[t + 1] == '{' || s[t + 1] == '%' || s[t + 1] == '#'))) t++;
        if (t + 1 >= n) t = n;
        size_t tlen = t - pos;
        if (t == n) {
            if (tlen) lex_push(L, T_DATA, 0, pos, tlen, L->line);
            L->line = line_at(s, pos, n, L->line);
            break;
        }
        char kind = s[t + 1];
        char ctl = t + 2 < n ? s[t + 2] : 0;
        if (ctl != '-' && ctl != '+') ctl = 0;
        if (ctl == '-') {
            tlen = rstrip_ws(s + pos, tlen);
        } else if (ctl != '+' && kind != '{') {
            /* lstrip_blocks: spaces/tabs between the line start and the tag */
            size_t l = tlen;
            while (l > 0 && s[pos + l - 1] != '\n') l--;
            if (l > 0 || line_starting) {
                size_t k = l;
                while (k < tlen && (s[pos + k] == ' ' || s[pos + k] == '\t')) k++;
                if (k == tlen) tlen = l;
            }
        }
        uint32_t data_line = L->line;
        L->line = line_at(s, pos, t, L->line);
        if (tlen) lex_push(L, T_DATA, 0, pos, tlen, data_line);
        size_t i = t + 2 + (ctl ? 1 : 0);
        if (kind == '#') {
            if (i >= n) break;   /* "{#" ending the template: Jinja2 drops it silently */
            size_t q = i;
            while (q + 1 < n && !(s[q] == '#' && s[q + 1] == '}')) q++;
            if (q + 1 >= n) fail_at(L->e, CHAT_TMPL_ERR_SYNTAX, (int)L->line, "missing end of comment tag");
            L->line = line_at(s, i, q, L->line);
            size_t after = q + 2;
            line_starting = 0;
            if (q > i && s[q - 1] == '-') {
                size_t k = lstrip_ws(s + after, n - after);
                L->line = line_at(s, after, after + k, L->line);
                line_starting = k > 0 && s[after + k - 1] == '\n';
                after += k;
            } else if (!(q > i && s[q - 1] == '+') && after < n && s[after] == '\n') {
                after++;
                L->line++;
                line_starting = 1;
            }
            pos = after;
            continue;
        }
        lex_push(L, kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, 0, t, i - t, L->line);
        pos = lex_tag(L, i, kind == '%', &line_starting);
    }
    lex_push(L, T_EOF, 0, n, 0, L->line);
}

/* ======================================================================
 * AST
 * ====================================================================== */

enum {
    /* expressions */
    N_CONST, N_NAME, N_GETATTR, N_GETITEM, N_SLICE, N_CALL, N_FILTER, N_TEST,
    N_NOT, N_NEG, N_POS, N_BIN, N_AND, N_OR, N_CMP, N_CMPOP, N_CONCAT, N_COND,
    N_LIST, N_TUPLE, N_DICT, N_PAIR, N_KWARG, N_NSREF,
    /* statements */
    S_TEXT, S_PRINT, S_IF, S_FOR, S_SET, S_SETBLOCK, S_MACRO, S_FILTERBLOCK,
    S_BREAK, S_CONTINUE, S_BLOCK, S_WITH
};

typedef struct node node;
struct node {
    uint8_t kind;
    uint8_t op;        /* N_BIN/N_CMPOP: OP_* (OP_IN / OP_NOTIN below) */
    int16_t id;        /* N_FILTER/N_TEST: builtin id, -1 = unknown name */
    uint32_t line;
    uint32_t n, n2;    /* lengths of s, s2 */
    const char *s;     /* name / text */
    const char *s2;    /* N_NSREF: attribute */
    node *a, *b, *c, *d;
    node *kids;        /* child list (linked by next) */
    node *next;
    val v;             /* N_CONST */
};

/* comparison operators beyond the token ops */
enum { OP_IN = 100, OP_NOTIN = 101 };

/* Builtin filters. Names of Jinja2 filters we lack are listed too, so that
 * using them is a run-time "unsupported" error, not an unknown filter. */
enum {
    F_ABS, F_ATTR, F_CAPITALIZE, F_COUNT, F_D, F_DEFAULT, F_DICTSORT, F_E, F_ESCAPE,
    F_FIRST, F_FLOAT, F_FORMAT, F_INDENT, F_INT, F_ITEMS, F_JOIN, F_LAST, F_LENGTH,
    F_LIST, F_LOWER, F_MAP, F_MAX, F_MIN, F_REJECT, F_REJECTATTR, F_REPLACE,
    F_REVERSE, F_ROUND, F_SAFE, F_SELECT, F_SELECTATTR, F_SORT, F_STRING, F_SUM,
    F_TITLE, F_TOJSON, F_TRIM, F_UNIQUE, F_UPPER, F_WORDCOUNT,
    F_N_IMPL,
    /* Jinja2 builtins not implemented */
    F_BATCH = F_N_IMPL, F_CENTER, F_FILESIZEFORMAT, F_FORCEESCAPE, F_GROUPBY,
    F_PPRINT, F_RANDOM, F_SLICE, F_STRIPTAGS, F_TRUNCATE, F_URLENCODE, F_URLIZE,
    F_WORDWRAP, F_XMLATTR,
    F_N
};
static const char *const filter_names[F_N] = {
    "abs", "attr", "capitalize", "count", "d", "default", "dictsort", "e", "escape",
    "first", "float", "format", "indent", "int", "items", "join", "last", "length",
    "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace",
    "reverse", "round", "safe", "select", "selectattr", "sort", "string", "sum",
    "title", "tojson", "trim", "unique", "upper", "wordcount",
    "batch", "center", "filesizeformat", "forceescape", "groupby",
    "pprint", "random", "slice", "striptags", "truncate", "urlencode", "urlize",
    "wordwrap", "xmlattr"
};

enum {
    TS_BOOLEAN, TS_CALLABLE, TS_DEFINED, TS_DIVISIBLEBY, TS_EQ, TS_EQUALTO, TS_ESCAPED,
    TS_EVEN, TS_FALSE, TS_FILTER, TS_FLOAT, TS_GE, TS_GREATERTHAN, TS_GT, TS_IN,
    TS_INTEGER, TS_ITERABLE, TS_LE, TS_LESSTHAN, TS_LOWER, TS_LT, TS_MAPPING, TS_NE,
    TS_NONE, TS_NUMBER, TS_ODD, TS_SAMEAS, TS_SEQUENCE, TS_STRING, TS_TEST, TS_TRUE,
    TS_UNDEFINED, TS_UPPER, TS_OP_EQ, TS_OP_NE, TS_OP_LT, TS_OP_LE, TS_OP_GT, TS_OP_GE,
    TS_N
};
static const char *const test_names[TS_N] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped",
    "even", "false", "filter", "float", "ge", "greaterthan", "gt", "in",
    "integer", "iterable", "le", "lessthan", "lower", "lt", "mapping", "ne",
    "none", "number", "odd", "sameas", "sequence", "string", "test", "true",
    "undefined", "upper", "==", "!=", "<", "<=", ">", ">="
};

static int lookup_name(const char *const *names, int count, const char *s, size_t n)
{
    for (int i = 0; i < count; i++)
        if (name_eq(s, n, names[i])) return i;
    return -1;
}

/* A name list (compile-time scope analysis). */
typedef struct namelist {
    const char *s;
    uint32_t n;
    struct namelist *next;
} namelist;

/* The compiled template: header of the compile memory. */
struct chat_tmpl {
    size_t size;       /* bytes of the compile memory used */
    node *body;
    namelist *hidden;  /* top-level names assigned before any top-level use:
                          undefined until assigned (see scope_root) */
};

/* ======================================================================
 * Parser (recursive descent; grammar and precedence as Jinja2's parser)
 * ====================================================================== */

typedef struct parser {
    errctx *e;
    arena *a;
    const char *s;     /* normalized source (copy in the arena) */
    const tok *t;
    int pos, ntok;
    int depth;
    int soft;          /* inside an if / conditional expression */
    int loops;         /* enclosing for loops (break/continue allowed) */
    int hard_unknown;  /* unknown filters/tests outside soft context */
    char unk[96];
    int unk_line;
} parser;

#define PFAIL(P, ...) fail_at((P)->e, CHAT_TMPL_ERR_SYNTAX, (int)(P)->t[(P)->pos].line, __VA_ARGS__)

static const tok *cur(parser *P) { return &P->t[P->pos]; }
static const tok *peek(parser *P, int k)
{
    int i = P->pos + k;
    return &P->t[i < P->ntok ? i : P->ntok - 1];
}
static void adv(parser *P) { if (P->pos < P->ntok - 1) P->pos++; }
static int is_op(const tok *t, int op) { return t->type == T_OP && t->op == op; }
static int is_name(parser *P, const tok *t, const char *name)
{
    return t->type == T_NAME && name_eq(P->s + t->start, t->len, name);
}
static void expect_op(parser *P, int op, const char *what)
{
    if (!is_op(cur(P), op)) PFAIL(P, "expected '%s'", what);
    adv(P);
}
static void expect_end(parser *P, int type)
{
    if (cur(P)->type != type)
        PFAIL(P, "expected end of %s tag", type == T_BLOCK_END ? "statement" : "print");
    adv(P);
}

static void enter(parser *P)
{
    if (++P->depth > CHAT_TMPL_PARSE_DEPTH)
        fail_at(P->e, CHAT_TMPL_ERR_LIMIT, (int)cur(P)->line, "template nested too deeply (limit %d)",
                CHAT_TMPL_PARSE_DEPTH);
}
static void leave(parser *P) { P->depth--; }

static node *mk(parser *P, int kind)
{
    node *x = arena_alloc_raw(P->a, sizeof(node), 8);
    if (!x) fail_at(P->e, CHAT_TMPL_ERR_NOMEM, (int)cur(P)->line, "out of memory (template AST)");
    memset(x, 0, sizeof *x);
    x->kind = (uint8_t)kind;
    x->line = cur(P)->line;
    x->id = -1;
    return x;
}

static node *expr(parser *P);
static node *expr_or(parser *P);
static node *unary(parser *P, int with_filter);
static node *primary(parser *P);
static node *postfix(parser *P, node *x);
static node *filter_expr(parser *P, node *x);
static node *tuple_expr(parser *P, int with_condexpr, const char *extra_end, int explicit_parens);

/* Python's "unicode-escape" decoding of a string literal body. */
static node *string_const(parser *P, const tok *t, char *buf, size_t *len)
{
    const char *s = P->s + t->start + 1;
    size_t n = t->len - 2, o = *len;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c != '\\' || i + 1 >= n) { buf[o++] = c; continue; }
        char d = s[++i];
        uint32_t cp;
        int hex = 0;
        switch (d) {
        case '\n': continue;
        case '\\': buf[o++] = '\\'; continue;
        case '\'': buf[o++] = '\''; continue;
        case '"': buf[o++] = '"'; continue;
        case 'a': buf[o++] = '\a'; continue;
        case 'b': buf[o++] = '\b'; continue;
        case 'f': buf[o++] = '\f'; continue;
        case 'n': buf[o++] = '\n'; continue;
        case 'r': buf[o++] = '\r'; continue;
        case 't': buf[o++] = '\t'; continue;
        case 'v': buf[o++] = '\v'; continue;
        case 'x': hex = 2; break;
        case 'u': hex = 4; break;
        case 'U': hex = 8; break;
        default:
            if (d >= '0' && d <= '7') {
                cp = 0;
                int k = 0;
                while (k < 3 && i < n && s[i] >= '0' && s[i] <= '7') { cp = cp * 8 + (uint32_t)(s[i] - '0'); i++; k++; }
                i--;
                o += (size_t)utf8_enc(cp, buf + o);
                continue;
            }
            buf[o++] = '\\';   /* unknown escapes stay as written */
            buf[o++] = d;
            continue;
        }
        cp = 0;
        for (int k = 0; k < hex; k++) {
            char h = i + 1 + (size_t)k < n ? s[i + 1 + (size_t)k] : 0;
            int dv = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                   : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
            if (dv < 0) PFAIL(P, "truncated \\%c escape in string literal", d);
            cp = cp * 16 + (uint32_t)dv;
        }
        i += (size_t)hex;
        if (cp > 0x10FFFF) PFAIL(P, "illegal Unicode character in string literal");
        if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD;   /* lone surrogate: not representable */
        o += (size_t)utf8_enc(cp, buf + o);
    }
    *len = o;
    return NULL;
}

static node *primary(parser *P)
{
    const tok *t = cur(P);
    node *x;
    if (t->type == T_NAME) {
        const char *s = P->s + t->start;
        x = mk(P, N_CONST);
        if (name_eq(s, t->len, "true") || name_eq(s, t->len, "True")) x->v = v_bool(1);
        else if (name_eq(s, t->len, "false") || name_eq(s, t->len, "False")) x->v = v_bool(0);
        else if (name_eq(s, t->len, "none") || name_eq(s, t->len, "None")) x->v = v_none();
        else { x->kind = N_NAME; x->s = s; x->n = t->len; }
        adv(P);
        return x;
    }
    if (t->type == T_STRING) {
        /* adjacent literals concatenate; decoded text is never longer than
         * the literal (\N{...} is not supported) */
        size_t total = 0;
        int k = P->pos;
        while (P->t[k].type == T_STRING) total += P->t[k++].len;
        char *buf = arena_alloc_raw(P->a, total + 1, 1);
        if (!buf) fail_at(P->e, CHAT_TMPL_ERR_NOMEM, (int)t->line, "out of memory (string literal)");
        size_t len = 0;
        while (cur(P)->type == T_STRING) { string_const(P, cur(P), buf, &len); adv(P); }
        P->a->lo -= total + 1 - len;   /* give back what decoding saved */
        x = mk(P, N_CONST);
        x->v = v_str(buf, len);
        return x;
    }
    if (t->type == T_INT || t->type == T_FLOAT) {
        char tmp[128];
        size_t o = 0;
        for (uint32_t i = 0; i < t->len && o + 1 < sizeof tmp; i++)
            if (P->s[t->start + i] != '_') tmp[o++] = P->s[t->start + i];
        tmp[o] = 0;
        x = mk(P, N_CONST);
        if (t->type == T_FLOAT) {
            x->v = v_float(strtod(tmp, NULL));
        } else {
            int64_t v = 0;
            int base = 10;
            size_t i = 0;
            if (o > 2 && tmp[0] == '0' && strchr("xXoObB", tmp[1])) {
                base = (tmp[1] | 32) == 'x' ? 16 : (tmp[1] | 32) == 'o' ? 8 : 2;
                i = 2;
            }
            for (; i < o; i++) {
                int d = is_digit(tmp[i]) ? tmp[i] - '0' : (tmp[i] | 32) - 'a' + 10;
                if (v > (INT64_MAX - d) / base) PFAIL(P, "integer literal too large");
                v = v * base + d;
            }
            x->v = v_int(v);
        }
        adv(P);
        return x;
    }
    if (is_op(t, OP_LPAREN)) {
        adv(P);
        x = tuple_expr(P, 1, NULL, 1);
        expect_op(P, OP_RPAREN, ")");
        return x;
    }
    if (is_op(t, OP_LBRACKET)) {
        adv(P);
        x = mk(P, N_LIST);
        node **tail = &x->kids;
        while (!is_op(cur(P), OP_RBRACKET)) {
            if (x->kids) expect_op(P, OP_COMMA, ",");
            if (is_op(cur(P), OP_RBRACKET)) break;
            *tail = expr(P);
            tail = &(*tail)->next;
        }
        adv(P);
        return x;
    }
    if (is_op(t, OP_LBRACE)) {
        adv(P);
        x = mk(P, N_DICT);
        node **tail = &x->kids;
        while (!is_op(cur(P), OP_RBRACE)) {
            if (x->kids) expect_op(P, OP_COMMA, ",");
            if (is_op(cur(P), OP_RBRACE)) break;
            node *pr = mk(P, N_PAIR);
            pr->a = expr(P);
            expect_op(P, OP_COLON, ":");
            pr->b = expr(P);
            *tail = pr;
            tail = &pr->next;
        }
        adv(P);
        return x;
    }
    if (t->type == T_VAR_END || t->type == T_BLOCK_END || t->type == T_EOF)
        PFAIL(P, "expected an expression, got end of tag");
    PFAIL(P, "unexpected '%.*s'", (int)(t->len > 20 ? 20 : t->len), P->s + t->start);
}

/* (args) of a call, filter or test: positional then name=value */
static node *call_args(parser *P)
{
    node *head = NULL, **tail = &head;
    int kw = 0, count = 0;
    expect_op(P, OP_LPAREN, "(");
    while (!is_op(cur(P), OP_RPAREN)) {
        if (head) {
            expect_op(P, OP_COMMA, ",");
            if (is_op(cur(P), OP_RPAREN)) break;
        }
        if (is_op(cur(P), OP_MUL) || is_op(cur(P), OP_POW))
            fail_at(P->e, CHAT_TMPL_ERR_UNSUPPORTED, (int)cur(P)->line, "*args / **kwargs in calls are not supported");
        node *arg;
        if (cur(P)->type == T_NAME && is_op(peek(P, 1), OP_ASSIGN)) {
            arg = mk(P, N_KWARG);
            arg->s = P->s + cur(P)->start;
            arg->n = cur(P)->len;
            adv(P);
            adv(P);
            arg->a = expr(P);
            kw = 1;
        } else {
            if (kw) PFAIL(P, "invalid argument syntax (positional after keyword)");
            arg = expr(P);
        }
        if (++count > 16) PFAIL(P, "too many arguments (limit 16)");
        *tail = arg;
        tail = &arg->next;
    }
    adv(P);
    return head;
}

static node *subscribed(parser *P)
{
    node *args[3] = {0};
    if (is_op(cur(P), OP_COLON)) {
        adv(P);
    } else {
        node *x = expr(P);
        if (!is_op(cur(P), OP_COLON)) return x;
        adv(P);
        args[0] = x;
    }
    if (!is_op(cur(P), OP_COLON) && !is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA))
        args[1] = expr(P);
    if (is_op(cur(P), OP_COLON)) {
        adv(P);
        if (!is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA)) args[2] = expr(P);
    }
    node *s = mk(P, N_SLICE);
    s->b = args[0];
    s->c = args[1];
    s->d = args[2];
    return s;
}

static node *postfix(parser *P, node *x)
{
    int chain = 0;   /* left-deep chains count as nesting */
    for (;; chain++, enter(P)) {
        const tok *t = cur(P);
        if (is_op(t, OP_DOT)) {
            adv(P);
            t = cur(P);
            node *g;
            if (t->type == T_NAME) {
                g = mk(P, N_GETATTR);
                g->s = P->s + t->start;
                g->n = t->len;
            } else if (t->type == T_INT) {
                g = mk(P, N_GETITEM);
                g->b = primary(P);
                g->a = x;
                x = g;
                continue;
            } else {
                PFAIL(P, "expected a name after '.'");
            }
            adv(P);
            g->a = x;
            x = g;
        } else if (is_op(t, OP_LBRACKET)) {
            adv(P);
            node *items = NULL, **tail = &items;
            int count = 0;
            while (!is_op(cur(P), OP_RBRACKET)) {
                if (count) {
                    expect_op(P, OP_COMMA, ",");
                    if (is_op(cur(P), OP_RBRACKET)) break;
                }
                *tail = subscribed(P);
                tail = &(*tail)->next;
                count++;
            }
            adv(P);
            node *g = mk(P, N_GETITEM);
            g->a = x;
            if (count == 0) {   /* x[]: the empty tuple as key, which nothing has */
                g->b = mk(P, N_TUPLE);
            } else if (count == 1 && items->kind == N_SLICE) {
                g->kind = N_SLICE;
                g->b = items->b;
                g->c = items->c;
                g->d = items->d;
            } else if (count == 1) {
                g->b = items;
            } else {
                int has_slice = 0;
                for (node *it = items; it; it = it->next) has_slice |= it->kind == N_SLICE;
                if (has_slice) {
                    /* x[a, 1:2]: Jinja2 generates invalid Python for it */
                    PFAIL(P, "a slice inside a subscript tuple is not valid");
                } else {
                    node *tp = mk(P, N_TUPLE);
                    tp->kids = items;
                    g->b = tp;
                }
            }
            x = g;
        } else if (is_op(t, OP_LPAREN)) {
            node *c = mk(P, N_CALL);
            c->a = x;
            c->kids = call_args(P);
            x = c;
        } else {
            P->depth -= chain;
            return x;
        }
    }
}

static node *filter_one(parser *P, node *x, int is_test)
{
    const tok *t = cur(P);
    if (t->type != T_NAME) PFAIL(P, "expected a %s name", is_test ? "test" : "filter");
    node *f = mk(P, is_test ? N_TEST : N_FILTER);
    f->s = P->s + t->start;
    f->n = t->len;
    adv(P);
    while (is_op(cur(P), OP_DOT) && peek(P, 1)->type == T_NAME) {   /* dotted names */
        adv(P);
        f->n = cur(P)->start + cur(P)->len - (uint32_t)(f->s - P->s);
        adv(P);
    }
    f->a = x;
    f->id = (int16_t)(is_test ? lookup_name(test_names, TS_N, f->s, f->n)
                              : lookup_name(filter_names, F_N, f->s, f->n));
    if (f->id < 0 && !P->soft) {
        if (P->hard_unknown++ == 0) {
            snprintf(P->unk, sizeof P->unk, "no %s named '%.*s'", is_test ? "test" : "filter",
                     (int)(f->n > 40 ? 40 : f->n), f->s);
            P->unk_line = (int)t->line;
        }
    }
    return f;
}

static node *filter_expr(parser *P, node *x)
{
    int chain = 0;
    for (;; chain++, enter(P)) {
        const tok *t = cur(P);
        if (is_op(t, OP_PIPE)) {
            adv(P);
            x = filter_one(P, x, 0);
            if (is_op(cur(P), OP_LPAREN)) x->kids = call_args(P);
        } else if (is_name(P, t, "is")) {
            adv(P);
            int negated = 0;
            if (is_name(P, cur(P), "not")) { adv(P); negated = 1; }
            node *ts = filter_one(P, x, 1);
            const tok *u = cur(P);
            if (is_op(u, OP_LPAREN)) {
                ts->kids = call_args(P);
            } else if ((u->type == T_NAME || u->type == T_STRING || u->type == T_INT || u->type == T_FLOAT ||
                        is_op(u, OP_LPAREN) || is_op(u, OP_LBRACKET) || is_op(u, OP_LBRACE)) &&
                       !is_name(P, u, "else") && !is_name(P, u, "or") && !is_name(P, u, "and")) {
                if (is_name(P, u, "is")) PFAIL(P, "you cannot chain multiple tests with is");
                ts->kids = postfix(P, primary(P));
            }
            x = ts;
            if (negated) {
                node *nt = mk(P, N_NOT);
                nt->a = x;
                x = nt;
            }
        } else if (is_op(t, OP_LPAREN)) {
            node *c = mk(P, N_CALL);
            c->a = x;
            c->kids = call_args(P);
            x = c;
        } else {
            P->depth -= chain;
            return x;
        }
    }
}

static node *unary(parser *P, int with_filter)
{
    enter(P);
    node *x;
    if (is_op(cur(P), OP_SUB) || is_op(cur(P), OP_ADD)) {
        x = mk(P, is_op(cur(P), OP_SUB) ? N_NEG : N_POS);
        adv(P);
        x->a = unary(P, 0);
    } else {
        x = primary(P);
    }
    x = postfix(P, x);
    if (with_filter) x = filter_expr(P, x);
    leave(P);
    return x;
}

static node *mk_bin(parser *P, int op, node *l, node *r)
{
    node *b = mk(P, N_BIN);
    b->op = (uint8_t)op;
    b->a = l;
    b->b = r;
    return b;
}

static node *expr_pow(parser *P)
{
    int chain = 0;   /* left-deep chains count as nesting */
    node *l = unary(P, 1);
    while (is_op(cur(P), OP_POW)) {
        adv(P);
        enter(P);
        chain++;
        l = mk_bin(P, OP_POW, l, unary(P, 1));
    }
    P->depth -= chain;
    return l;
}

static node *expr_math2(parser *P)
{
    int chain = 0;   /* left-deep chains count as nesting */
    node *l = expr_pow(P);
    while (is_op(cur(P), OP_MUL) || is_op(cur(P), OP_DIV) || is_op(cur(P), OP_FLOORDIV) || is_op(cur(P), OP_MOD)) {
        int op = cur(P)->op;
        adv(P);
        enter(P);
        chain++;
        l = mk_bin(P, op, l, expr_pow(P));
    }
    P->depth -= chain;
    return l;
}

static node *expr_concat(parser *P)
{
    node *first = expr_math2(P);
    if (!is_op(cur(P), OP_TILDE)) return first;
    node *c = mk(P, N_CONCAT);
    c->kids = first;
    node **tail = &first->next;
    while (is_op(cur(P), OP_TILDE)) {
        adv(P);
        *tail = expr_math2(P);
        tail = &(*tail)->next;
    }
    return c;
}

static node *expr_math1(parser *P)
{
    int chain = 0;   /* left-deep chains count as nesting */
    node *l = expr_concat(P);
    while (is_op(cur(P), OP_ADD) || is_op(cur(P), OP_SUB)) {
        int op = cur(P)->op;
        adv(P);
        enter(P);
        chain++;
        l = mk_bin(P, op, l, expr_concat(P));
    }
    P->depth -= chain;
    return l;
}

static node *expr_compare(parser *P)
{
    node *first = expr_math1(P);
    node *cmp = NULL, **tail = NULL;
    for (;;) {
        const tok *t = cur(P);
        int op = 0;
        if (t->type == T_OP && (t->op == OP_EQ || t->op == OP_NE || t->op == OP_LT || t->op == OP_LTEQ ||
                                t->op == OP_GT || t->op == OP_GTEQ)) {
            op = t->op;
            adv(P);
        } else if (is_name(P, t, "in")) {
            op = OP_IN;
            adv(P);
        } else if (is_name(P, t, "not") && is_name(P, peek(P, 1), "in")) {
            op = OP_NOTIN;
            adv(P);
            adv(P);
        } else {
            break;
        }
        if (!cmp) {
            cmp = mk(P, N_CMP);
            cmp->a = first;
            tail = &cmp->kids;
        }
        node *o = mk(P, N_CMPOP);
        o->op = (uint8_t)op;
        o->a = expr_math1(P);
        *tail = o;
        tail = &o->next;
    }
    return cmp ? cmp : first;
}

static node *expr_not(parser *P)
{
    if (is_name(P, cur(P), "not")) {
        enter(P);
        node *x = mk(P, N_NOT);
        adv(P);
        x->a = expr_not(P);
        leave(P);
        return x;
    }
    return expr_compare(P);
}

static node *expr_and(parser *P)
{
    int chain = 0;   /* left-deep chains count as nesting */
    node *l = expr_not(P);
    while (is_name(P, cur(P), "and")) {
        adv(P);
        enter(P);
        chain++;
        node *x = mk(P, N_AND);
        x->a = l;
        x->b = expr_not(P);
        l = x;
    }
    P->depth -= chain;
    return l;
}

static node *expr_or(parser *P)
{
    int chain = 0;   /* left-deep chains count as nesting */
    node *l = expr_and(P);
    while (is_name(P, cur(P), "or")) {
        adv(P);
        enter(P);
        chain++;
        node *x = mk(P, N_OR);
        x->a = l;
        x->b = expr_and(P);
        l = x;
    }
    P->depth -= chain;
    return l;
}

static node *expr_cond(parser *P)
{
    enter(P);
    int h0 = P->hard_unknown;
    node *x = expr_or(P);
    while (is_name(P, cur(P), "if")) {
        /* a conditional expression is a "soft" frame in Jinja2: unknown
         * filters anywhere in it (also in the part already parsed) fail
         * only when evaluated */
        P->hard_unknown = h0;
        P->soft++;
        adv(P);
        node *c = mk(P, N_COND);
        c->b = x;
        c->a = expr_or(P);
        if (is_name(P, cur(P), "else")) {
            adv(P);
            c->c = expr_cond(P);
        }
        P->soft--;
        x = c;
    }
    leave(P);
    return x;
}

static node *expr(parser *P) { return expr_cond(P); }

/* Only ends of tags and ')' end a tuple. Jinja2 3.1 also takes "extra end
 * rules" (`in` for loop targets, `recursive`) but passes them in a way that
 * never matches, so `for a, in x` reads `in` as a second target name; we
 * follow that. */
static int tuple_end(parser *P, const char *extra_end)
{
    const tok *t = cur(P);
    (void)extra_end;
    return t->type == T_VAR_END || t->type == T_BLOCK_END || t->type == T_EOF || is_op(t, OP_RPAREN);
}

static node *tuple_expr(parser *P, int with_condexpr, const char *extra_end, int explicit_parens)
{
    node *head = NULL, **tail = &head;
    int count = 0, is_tuple = 0;
    for (;;) {
        if (count) expect_op(P, OP_COMMA, ",");
        if (tuple_end(P, extra_end)) break;
        node *x = with_condexpr ? expr(P) : expr_or(P);
        *tail = x;
        tail = &x->next;
        count++;
        if (is_op(cur(P), OP_COMMA)) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (count) return head;
        if (!explicit_parens) PFAIL(P, "expected an expression");
    }
    node *tp = mk(P, N_TUPLE);
    tp->kids = head;
    return tp;
}

/* assignment target: name, ns.attr (when allowed), or names separated by
 * commas (optionally parenthesized) */
static node *assign_target(parser *P, int with_ns, const char *extra_end)
{
    const tok *t = cur(P);
    if (with_ns && t->type == T_NAME && is_op(peek(P, 1), OP_DOT) && peek(P, 2)->type == T_NAME) {
        node *x = mk(P, N_NSREF);
        x->s = P->s + t->start;
        x->n = t->len;
        x->s2 = P->s + peek(P, 2)->start;
        x->n2 = peek(P, 2)->len;
        adv(P);
        adv(P);
        adv(P);
        return x;
    }
    int paren = 0;
    if (is_op(t, OP_LPAREN)) { paren = 1; adv(P); }
    node *head = NULL, **tail = &head;
    int count = 0, is_tuple = paren;
    for (;;) {
        if (count) expect_op(P, OP_COMMA, ",");
        if (paren ? is_op(cur(P), OP_RPAREN) : tuple_end(P, extra_end)) break;
        t = cur(P);
        if (t->type != T_NAME) PFAIL(P, "can't assign to this expression");
        node *x = mk(P, N_NAME);
        x->s = P->s + t->start;
        x->n = t->len;
        if (name_eq(x->s, x->n, "true") || name_eq(x->s, x->n, "false") || name_eq(x->s, x->n, "none") ||
            name_eq(x->s, x->n, "True") || name_eq(x->s, x->n, "False") || name_eq(x->s, x->n, "None"))
            PFAIL(P, "can't assign to a constant");
        adv(P);
        *tail = x;
        tail = &x->next;
        count++;
        if (is_op(cur(P), OP_COMMA)) is_tuple = 1;
        else break;
    }
    if (paren) expect_op(P, OP_RPAREN, ")");
    if (!count) PFAIL(P, "expected an assignment target");
    if (!is_tuple) return head;
    node *tp = mk(P, N_TUPLE);
    tp->kids = head;
    return tp;
}

static node *body(parser *P, const char *const *ends, int *which);

static node *stmt_if(parser *P)
{
    static const char *const ends[] = {"elif", "else", "endif", NULL};
    node *top = mk(P, S_IF), *x = top;
    P->soft++;
    for (;;) {
        x->a = tuple_expr(P, 0, NULL, 0);
        expect_end(P, T_BLOCK_END);
        int which;
        x->b = body(P, ends, &which);
        adv(P);   /* the end name */
        if (which == 0) {
            node *y = mk(P, S_IF);
            x->c = y;
            x = y;
            continue;
        }
        if (which == 1) {
            static const char *const ends2[] = {"endif", NULL};
            expect_end(P, T_BLOCK_END);
            x->c = body(P, ends2, &which);
            adv(P);
        }
        expect_end(P, T_BLOCK_END);
        break;
    }
    P->soft--;
    return top;
}

static node *stmt_for(parser *P)
{
    static const char *const ends[] = {"endfor", "else", NULL};
    static const char *const ends2[] = {"endfor", NULL};
    node *x = mk(P, S_FOR);
    x->a = assign_target(P, 0, "in");
    if (!is_name(P, cur(P), "in")) PFAIL(P, "expected 'in' in for loop");
    adv(P);
    x->b = tuple_expr(P, 0, "recursive", 0);
    int soft = P->soft;
    P->soft = 0;
    if (is_name(P, cur(P), "if")) {
        adv(P);
        x->c = expr(P);
    }
    if (is_name(P, cur(P), "recursive"))
        fail_at(P->e, CHAT_TMPL_ERR_UNSUPPORTED, (int)cur(P)->line, "recursive loops are not supported");
    expect_end(P, T_BLOCK_END);
    int which;
    P->loops++;
    x->d = body(P, ends, &which);
    P->loops--;
    adv(P);
    if (which == 1) {
        expect_end(P, T_BLOCK_END);
        x->kids = body(P, ends2, &which);
        adv(P);
    }
    expect_end(P, T_BLOCK_END);
    P->soft = soft;
    return x;
}

/* `| f(args) | g` chain applied to a captured body: innermost operand NULL */
static node *filter_chain(parser *P)
{
    node *x = NULL;
    int chain = 0;
    for (int first = 1; first || is_op(cur(P), OP_PIPE); first = 0, chain++) {
        if (!first) adv(P);
        enter(P);
        x = filter_one(P, x, 0);
        if (is_op(cur(P), OP_LPAREN)) x->kids = call_args(P);
    }
    P->depth -= chain;
    return x;
}

static node *stmt_set(parser *P)
{
    node *x = mk(P, S_SET);
    x->a = assign_target(P, 1, NULL);
    if (is_op(cur(P), OP_ASSIGN)) {
        adv(P);
        x->b = tuple_expr(P, 1, NULL, 0);
        expect_end(P, T_BLOCK_END);
        return x;
    }
    static const char *const ends[] = {"endset", NULL};
    x->kind = S_SETBLOCK;
    if (is_op(cur(P), OP_PIPE)) {
        adv(P);
        x->c = filter_chain(P);
    }
    expect_end(P, T_BLOCK_END);
    int which;
    x->b = body(P, ends, &which);
    adv(P);
    expect_end(P, T_BLOCK_END);
    return x;
}

static node *stmt_macro(parser *P)
{
    static const char *const ends[] = {"endmacro", NULL};
    node *x = mk(P, S_MACRO);
    if (cur(P)->type != T_NAME) PFAIL(P, "expected a macro name");
    x->s = P->s + cur(P)->start;
    x->n = cur(P)->len;
    adv(P);
    expect_op(P, OP_LPAREN, "(");
    node **tail = &x->kids;
    int count = 0;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (count) expect_op(P, OP_COMMA, ",");
        if (is_op(cur(P), OP_RPAREN)) break;
        if (cur(P)->type != T_NAME) PFAIL(P, "expected a parameter name");
        node *p = mk(P, N_NAME);
        p->s = P->s + cur(P)->start;
        p->n = cur(P)->len;
        adv(P);
        if (is_op(cur(P), OP_ASSIGN)) {
            adv(P);
            p->a = expr(P);
        } else {
            for (node *q = x->kids; q; q = q->next)
                if (q->a) PFAIL(P, "non-default argument follows default argument");
        }
        if (++count > 16) PFAIL(P, "too many macro parameters (limit 16)");
        *tail = p;
        tail = &p->next;
    }
    adv(P);
    expect_end(P, T_BLOCK_END);
    int soft = P->soft, loops = P->loops;
    P->soft = 0;
    P->loops = 0;
    int which;
    x->b = body(P, ends, &which);
    P->soft = soft;
    P->loops = loops;
    adv(P);
    expect_end(P, T_BLOCK_END);
    return x;
}

static node *statement(parser *P)
{
    const tok *t = cur(P);
    if (t->type != T_NAME) PFAIL(P, "tag name expected");
    const char *s = P->s + t->start;
    size_t n = t->len;
    enter(P);
    adv(P);
    node *x;
    if (name_eq(s, n, "if")) {
        x = stmt_if(P);
    } else if (name_eq(s, n, "for")) {
        x = stmt_for(P);
    } else if (name_eq(s, n, "set")) {
        x = stmt_set(P);
    } else if (name_eq(s, n, "macro")) {
        x = stmt_macro(P);
    } else if (name_eq(s, n, "filter")) {
        static const char *const ends[] = {"endfilter", NULL};
        x = mk(P, S_FILTERBLOCK);
        x->a = filter_chain(P);
        expect_end(P, T_BLOCK_END);
        int which;
        x->b = body(P, ends, &which);
        adv(P);
        expect_end(P, T_BLOCK_END);
    } else if (name_eq(s, n, "break") || name_eq(s, n, "continue")) {
        if (!P->loops) PFAIL(P, "'%.*s' outside of a loop", (int)n, s);
        x = mk(P, name_eq(s, n, "break") ? S_BREAK : S_CONTINUE);
        expect_end(P, T_BLOCK_END);
    } else if (name_eq(s, n, "generation")) {
        static const char *const ends[] = {"endgeneration", NULL};
        x = mk(P, S_BLOCK);
        expect_end(P, T_BLOCK_END);
        int which;
        x->b = body(P, ends, &which);
        adv(P);
        expect_end(P, T_BLOCK_END);
    } else if (name_eq(s, n, "with")) {
        /* {% with a = 1, b = 2 %}: kids = N_KWARG (name, value) */
        static const char *const ends[] = {"endwith", NULL};
        x = mk(P, S_WITH);
        node **tail = &x->kids;
        while (cur(P)->type != T_BLOCK_END) {
            if (x->kids) expect_op(P, OP_COMMA, ",");
            if (cur(P)->type != T_NAME || !is_op(peek(P, 1), OP_ASSIGN)) PFAIL(P, "expected name = value in with");
            node *kw = mk(P, N_KWARG);
            kw->s = P->s + cur(P)->start;
            kw->n = cur(P)->len;
            adv(P);
            adv(P);
            kw->a = expr(P);
            *tail = kw;
            tail = &kw->next;
        }
        expect_end(P, T_BLOCK_END);
        int which;
        x->b = body(P, ends, &which);
        adv(P);
        expect_end(P, T_BLOCK_END);
    } else if (name_eq(s, n, "call") || name_eq(s, n, "include") || name_eq(s, n, "extends") ||
               name_eq(s, n, "block") || name_eq(s, n, "import") || name_eq(s, n, "from") ||
               name_eq(s, n, "raw") || name_eq(s, n, "autoescape") || name_eq(s, n, "do")) {
        fail_at(P->e, CHAT_TMPL_ERR_UNSUPPORTED, (int)t->line, "'%.*s' tags are not supported", (int)n, s);
    } else {
        PFAIL(P, "encountered unknown tag '%.*s'", (int)(n > 40 ? 40 : n), s);
    }
    leave(P);
    return x;
}

/* Statements until one of `ends` (NULL-terminated; may be NULL for the
 * template body). On return cur() is the end name. */
static node *body(parser *P, const char *const *ends, int *which)
{
    node *head = NULL, **tail = &head;
    enter(P);
    for (;;) {
        const tok *t = cur(P);
        node *x = NULL;
        if (t->type == T_EOF) {
            if (ends && ends[0]) PFAIL(P, "unexpected end of template, expected '%s'", ends[0]);
            break;
        }
        if (t->type == T_DATA) {
            x = mk(P, S_TEXT);
            x->s = P->s + t->start;
            x->n = t->len;
            adv(P);
        } else if (t->type == T_VAR_BEGIN) {
            adv(P);
            x = mk(P, S_PRINT);
            x->a = tuple_expr(P, 1, NULL, 0);
            expect_end(P, T_VAR_END);
        } else if (t->type == T_BLOCK_BEGIN) {
            adv(P);
            int hit = -1;
            for (int k = 0; ends && ends[k]; k++)
                if (is_name(P, cur(P), ends[k])) { hit = k; break; }
            if (hit >= 0) {
                *which = hit;
                break;
            }
            x = statement(P);
        } else {
            PFAIL(P, "unexpected token");
        }
        *tail = x;
        tail = &x->next;
    }
    leave(P);
    return head;
}

/* ======================================================================
 * Interpreter state
 * ====================================================================== */

typedef struct var {
    const char *name;
    uint32_t n;
    val v;
    struct var *next;
} var;

/* A scope. For-loop iterations and macro calls push one, so `set` inside
 * them does not leak out (Jinja2 scoping); if-blocks do not. */
typedef struct frame {
    struct frame *parent;
    var *vars;
} frame;

struct macro {
    const node *def;
    frame *closure;    /* where the macro was defined */
};

struct loopst {
    const val *items;
    uint32_t n, i;
};

/* Output: the caller's buffer (fixed) or a growing string in the arena. */
typedef struct sink {
    char *buf;
    size_t len, cap;
    int in_arena;
    size_t born;   /* arena offset when the sink was made (see note_ref) */
} sink;

/* Call arguments: positional first, then keywords (kw != NULL). */
typedef struct arg {
    val v;
    const char *kw;
    uint32_t kwn;
} arg;

typedef struct args {
    const arg *a;
    int n;
} args;

typedef struct interp {
    errctx e;
    arena a;
    frame *cur;
    frame *ctx;          /* render variables (messages, tools, ...) */
    sink *out;
    uint64_t steps, max_steps;
    int depth, max_depth;
    /* Memory reuse: every loop iteration and printed expression takes a
     * mark (the arena offset when it began) and drops everything allocated
     * since, unless an older object was made to refer to newer memory
     * (namespace attribute, mutated list, growing output string): then the
     * marks in between are "blocked". */
    struct { size_t off; int blocked; } marks[256];
    int nmarks;
    unsigned flags;
    time_t now;
    int line;            /* template line being evaluated, for messages */
    arg *vs;             /* argument stack */
    int vsp, vscap;
} interp;

#define IFAIL(I, code, ...) fail_at(&(I)->e, (code), (I)->line, __VA_ARGS__)
#define RFAIL(I, ...) IFAIL(I, CHAT_TMPL_ERR_RENDER, __VA_ARGS__)

static void step(interp *I)
{
    if (++I->steps > I->max_steps)
        IFAIL(I, CHAT_TMPL_ERR_LIMIT, "template ran too long (%llu steps)", (unsigned long long)I->max_steps);
}

static void deeper(interp *I)
{
    if (++I->depth > I->max_depth)
        IFAIL(I, CHAT_TMPL_ERR_LIMIT, "template recursion too deep (limit %d)", I->max_depth);
}
static void shallower(interp *I) { I->depth--; }

static void *ialloc(interp *I, size_t n, size_t align)
{
    void *p = arena_alloc_raw(&I->a, n, align);
    if (!p) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "out of memory (render arena of %zu bytes is full)", I->a.cap);
    return p;
}

/* Arena offset of p, or 0 for memory outside the arena (input JSON text,
 * the template, static strings). */
static size_t arena_off(interp *I, const void *p)
{
    const char *c = p;
    if (c >= I->a.base && c < I->a.base + I->a.cap) return (size_t)(c - I->a.base) + 1;
    return 0;
}

/* An object made at arena offset `holder` now refers to memory at offset
 * `target`: marks taken after the holder and at or before the target can
 * no longer be released. */
static void note_ref(interp *I, size_t holder, size_t target)
{
    for (int k = I->nmarks - 1; k >= 0 && I->marks[k].off >= holder; k--)
        if (I->marks[k].off < target) I->marks[k].blocked = 1;
}

/* highest arena offset v points to directly */
static size_t val_top(interp *I, val v)
{
    size_t t = 0, x;
#define TOP(p) do { x = arena_off(I, (p)); if (x > t) t = x; } while (0)
    switch (v.t) {
    case VT_STR: case VT_UNDEF: TOP(v.u.s); break;
    case VT_LIST: TOP(v.u.l); TOP(v.u.l->v); break;
    case VT_DICT: TOP(v.u.d); TOP(v.u.d->k); TOP(v.u.d->v); break;
    case VT_MACRO: TOP(v.u.m); TOP(v.u.m->closure); break;
    case VT_BOUND: TOP(v.u.b); x = val_top(I, v.u.b->self); if (x > t) t = x; break;
    case VT_LOOP: TOP(v.u.lp); TOP(v.u.lp->items); break;
    default: break;
    }
#undef TOP
    return t;
}

static void note_val(interp *I, const void *holder, val v)
{
    note_ref(I, arena_off(I, holder), val_top(I, v));
}

/* Begin a region whose allocations are dropped by mark_drop: returns the
 * mark index (-1 when too many are active: nothing is then reused). */
static int mark_take(interp *I)
{
    if (I->nmarks == (int)(sizeof I->marks / sizeof I->marks[0]) || (I->flags & CHAT_TMPL_NO_REUSE)) return -1;
    I->marks[I->nmarks].off = I->a.lo;
    I->marks[I->nmarks].blocked = 0;
    return I->nmarks++;
}

/* End the region of mark m (the innermost): drop its allocations unless it
 * is blocked. Freed memory is poisoned so a wrong release shows in tests. */
static void mark_drop(interp *I, int m)
{
    if (m < 0) return;
    I->nmarks = m;
    size_t off = I->marks[m].off;
    if (!I->marks[m].blocked && off < I->a.lo) {
        memset(I->a.base + off, 0xA5, I->a.lo - off);
        I->a.lo = off;
    }
}

static void sink_put(interp *I, sink *k, const char *s, size_t n)
{
    if (n == 0) return;
    if (n > k->cap - k->len) {
        if (!k->in_arena)
            IFAIL(I, CHAT_TMPL_ERR_OUTPUT, "rendered text exceeds the output limit of %zu bytes", k->cap);
        if (n > UINT32_MAX - k->len) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "string too long");
        size_t need = k->len + n, ncap = k->cap * 2;
        if (ncap < need) ncap = need;
        if (ncap < 64) ncap = 64;
        arena *a = &I->a;
        size_t room = a->cap - a->hi - a->lo;
        if (k->buf && k->buf + k->cap == a->base + a->lo && need - k->cap <= room) {
            if (ncap - k->cap > room) ncap = need;
            a->lo += ncap - k->cap;   /* last allocation: grow in place */
        } else {
            char *nb = arena_alloc_raw(a, ncap, 1);
            if (!nb) {
                ncap = need;
                nb = ialloc(I, ncap, 1);
            }
            if (k->len) memcpy(nb, k->buf, k->len);
            k->buf = nb;
        }
        k->cap = ncap;
        note_ref(I, k->born, arena_off(I, k->buf + k->cap - 1));
    }
    memcpy(k->buf + k->len, s, n);
    k->len += n;
}

static void sink_putc(interp *I, sink *k, char c) { sink_put(I, k, &c, 1); }
static void sink_puts(interp *I, sink *k, const char *s) { sink_put(I, k, s, strlen(s)); }

static void sink_printf(interp *I, sink *k, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sink_printf(interp *I, sink *k, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (m > 0) sink_put(I, k, tmp, (size_t)m < sizeof tmp ? (size_t)m : sizeof tmp - 1);
}

static sink sink_arena(interp *I)
{
    sink k = {0};
    k.in_arena = 1;
    /* a mark taken at this same offset may be younger than the sink:
     * counting it as younger only blocks more releases, never fewer */
    k.born = I->a.lo;
    return k;
}

/* The sink's text as a string value; unused capacity is given back. */
static val sink_val(interp *I, sink *k)
{
    if (k->buf && k->buf + k->cap == I->a.base + I->a.lo) {
        I->a.lo -= k->cap - k->len;
        k->cap = k->len;
    }
    return v_str(k->buf ? k->buf : "", k->len);
}

static char *idup(interp *I, const char *s, size_t n)
{
    char *p = ialloc(I, n + 1, 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

/* ---- frames ---- */

static frame *frame_push(interp *I)
{
    frame *f = ialloc(I, sizeof *f, 8);
    f->parent = I->cur;
    f->vars = NULL;
    I->cur = f;
    return f;
}

static void frame_set(interp *I, frame *f, const char *name, size_t n, val v)
{
    for (var *x = f->vars; x; x = x->next)
        if (x->n == n && memcmp(x->name, name, n) == 0) { x->v = v; return; }
    var *x = ialloc(I, sizeof *x, 8);
    x->name = name;
    x->n = (uint32_t)n;
    x->v = v;
    x->next = f->vars;
    f->vars = x;
}

static var *frame_find(frame *f, const char *name, size_t n)
{
    for (; f; f = f->parent)
        for (var *x = f->vars; x; x = x->next)
            if (x->n == n && memcmp(x->name, name, n) == 0) return x;
    return NULL;
}

/* ---- containers ---- */

static vlist *list_new(interp *I, size_t n)
{
    if (n > UINT32_MAX / 2) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "list too long");
    vlist *l = ialloc(I, sizeof *l, 8);
    l->n = 0;
    l->pos = 0;
    l->cap = (uint32_t)n;
    l->v = n ? ialloc(I, n * sizeof(val), 8) : NULL;
    return l;
}

static void list_push(interp *I, vlist *l, val v)
{
    if (l->n == l->cap) {
        uint32_t ncap = l->cap ? l->cap * 2 : 4;
        if (ncap > UINT32_MAX / 2) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "list too long");
        val *nv = ialloc(I, (size_t)ncap * sizeof(val), 8);
        if (l->n) memcpy(nv, l->v, l->n * sizeof(val));
        l->v = nv;
        l->cap = ncap;
    }
    l->v[l->n++] = v;
}

static vdict *dict_new(interp *I, size_t n)
{
    vdict *d = ialloc(I, sizeof *d, 8);
    d->n = 0;
    d->cap = (uint32_t)n;
    d->k = n ? ialloc(I, n * sizeof(val), 8) : NULL;
    d->v = n ? ialloc(I, n * sizeof(val), 8) : NULL;
    return d;
}

static int py_eq(interp *I, val a, val b);

static int dict_find(interp *I, const vdict *d, val key)
{
    for (uint32_t i = 0; i < d->n; i++) {
        const val *k = &d->k[i];
        if (key.t == VT_STR && k->t == VT_STR) {
            if (k->n == key.n && memcmp(k->u.s, key.u.s, key.n) == 0) return (int)i;
        } else if (py_eq(I, *k, key)) {
            return (int)i;
        }
    }
    return -1;
}

static int dict_find_str(const vdict *d, const char *s, size_t n)
{
    for (uint32_t i = 0; i < d->n; i++)
        if (d->k[i].t == VT_STR && d->k[i].n == n && memcmp(d->k[i].u.s, s, n) == 0) return (int)i;
    return -1;
}

static void dict_set(interp *I, vdict *d, val key, val v)
{
    int i = dict_find(I, d, key);
    if (i >= 0) { d->v[i] = v; return; }
    if (d->n == d->cap) {
        uint32_t ncap = d->cap ? d->cap * 2 : 4;
        val *nk = ialloc(I, (size_t)ncap * sizeof(val), 8), *nv = ialloc(I, (size_t)ncap * sizeof(val), 8);
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(val));
            memcpy(nv, d->v, d->n * sizeof(val));
        }
        d->k = nk;
        d->v = nv;
        d->cap = ncap;
    }
    d->k[d->n] = key;
    d->v[d->n] = v;
    d->n++;
}

static const char *type_name(val v)
{
    switch (v.t) {
    case VT_UNDEF: return "Undefined";
    case VT_NONE: return "NoneType";
    case VT_BOOL: return "bool";
    case VT_INT: return "int";
    case VT_FLOAT: return "float";
    case VT_STR: return (v.fl & VF_MARKUP) ? "Markup" : "str";
    case VT_LIST:
        if (v.fl & VF_GEN) return "generator";
        if (v.fl & VF_VIEW) return v.aux == 2 ? "dict_keys" : v.aux == 3 ? "dict_values" : "dict_items";
        return (v.fl & VF_TUPLE) ? "tuple" : "list";
    case VT_DICT: return (v.fl & VF_NS) ? "Namespace" : "dict";
    case VT_MACRO: return "Macro";
    case VT_FUNC: return "function";
    case VT_BOUND: return "builtin_function_or_method";
    case VT_LOOP: return "LoopContext";
    default: return "object";
    }
}

/* undefined result of looking up name in obj */
static val v_missing(val obj, const char *name, size_t n, int fl)
{
    val u = v_undef(name, n);
    u.fl = (uint8_t)(VF_MISSING | fl);
    u.aux = (uint16_t)(obj.t | (obj.fl << 8));
    return u;
}

__attribute__((noreturn))
static void fail_undefined(interp *I, val u)
{
    int n = (int)(u.n > 60 ? 60 : u.n);
    const char *s = u.u.s ? u.u.s : "";
    val owner = {0};
    owner.t = (uint8_t)(u.aux & 0xFF);
    owner.fl = (uint8_t)(u.aux >> 8);
    if (u.fl & VF_UNSAFE)
        RFAIL(I, "access to attribute '%.*s' of '%s' object is unsafe", n, s, type_name(owner));
    if ((u.fl & VF_MISSING) && owner.t == VT_NONE) RFAIL(I, "'None' has no attribute '%.*s'", n, s);
    if ((u.fl & VF_MISSING) && u.u.s) RFAIL(I, "'%s object' has no attribute '%.*s'", type_name(owner), n, s);
    if (u.fl & VF_MISSING) RFAIL(I, "'%s object' has no such element", type_name(owner));
    if (u.u.s && u.n) RFAIL(I, "'%.*s' is undefined", n, s);
    RFAIL(I, "undefined value used");
}

/* ======================================================================
 * Python semantics of values: truth, equality, order, str(), repr(),
 * json.dumps()
 * ====================================================================== */

static int truthy(val v)
{
    switch (v.t) {
    case VT_UNDEF: case VT_NONE: case VT_ABSENT: return 0;
    case VT_BOOL: case VT_INT: return v.u.i != 0;
    case VT_FLOAT: return v.u.f != 0.0;
    case VT_STR: return v.n != 0;
    case VT_LIST: return (v.fl & VF_GEN) ? 1 : v.u.l->n != 0;
    case VT_DICT: return (v.fl & VF_NS) ? 1 : v.u.d->n != 0;
    default: return 1;
    }
}

static int py_eq(interp *I, val a, val b)
{
    if (is_num(a) && is_num(b)) {
        if (a.t == VT_FLOAT || b.t == VT_FLOAT) return num_f(a) == num_f(b);
        return a.u.i == b.u.i;
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case VT_UNDEF: case VT_NONE: return 1;
    case VT_STR: return a.n == b.n && memcmp(a.u.s, b.u.s, a.n) == 0;
    case VT_LIST: {
        if ((a.fl & (VF_GEN | VF_VIEW)) || (b.fl & (VF_GEN | VF_VIEW))) return a.u.l == b.u.l;
        if ((a.fl & VF_TUPLE) != (b.fl & VF_TUPLE)) return 0;
        if (a.u.l->n != b.u.l->n) return 0;
        deeper(I);
        for (uint32_t i = 0; i < a.u.l->n; i++)
            if (!py_eq(I, a.u.l->v[i], b.u.l->v[i])) { shallower(I); return 0; }
        shallower(I);
        return 1;
    }
    case VT_DICT: {
        if ((a.fl & VF_NS) || (b.fl & VF_NS)) return a.u.d == b.u.d;
        if (a.u.d->n != b.u.d->n) return 0;
        deeper(I);
        for (uint32_t i = 0; i < a.u.d->n; i++) {
            int j = dict_find(I, b.u.d, a.u.d->k[i]);
            if (j < 0 || !py_eq(I, a.u.d->v[i], b.u.d->v[j])) { shallower(I); return 0; }
        }
        shallower(I);
        return 1;
    }
    case VT_MACRO: return a.u.m == b.u.m;
    case VT_FUNC: return a.u.i == b.u.i;
    case VT_LOOP: return a.u.lp == b.u.lp;
    default: return 0;
    }
}

/* <0, 0, >0; a render error for types Python cannot order */
static int py_cmp(interp *I, val a, val b)
{
    if (a.t == VT_UNDEF) fail_undefined(I, a);
    if (b.t == VT_UNDEF) fail_undefined(I, b);
    if (is_num(a) && is_num(b)) {
        if (a.t == VT_FLOAT || b.t == VT_FLOAT) {
            double x = num_f(a), y = num_f(b);
            return x < y ? -1 : x > y ? 1 : 0;
        }
        return a.u.i < b.u.i ? -1 : a.u.i > b.u.i ? 1 : 0;
    }
    if (a.t == VT_STR && b.t == VT_STR) {
        size_t m = a.n < b.n ? a.n : b.n;
        int c = memcmp(a.u.s, b.u.s, m);   /* UTF-8 byte order = code point order */
        if (c) return c;
        return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
    }
    if (a.t == VT_LIST && b.t == VT_LIST && !((a.fl | b.fl) & (VF_GEN | VF_VIEW)) &&
        (a.fl & VF_TUPLE) == (b.fl & VF_TUPLE)) {
        deeper(I);
        for (uint32_t i = 0; i < a.u.l->n && i < b.u.l->n; i++) {
            if (py_eq(I, a.u.l->v[i], b.u.l->v[i])) continue;
            int c = py_cmp(I, a.u.l->v[i], b.u.l->v[i]);
            shallower(I);
            return c;
        }
        shallower(I);
        return a.u.l->n < b.u.l->n ? -1 : a.u.l->n > b.u.l->n ? 1 : 0;
    }
    RFAIL(I, "'<' not supported between instances of '%s' and '%s'", type_name(a), type_name(b));
}

/* Python's repr(float) (also str()): shortest round-trip digits, fixed
 * notation for 1e-4 <= |x| < 1e16, else d.ddde+XX. */
static int fmt_pyfloat(char *o, size_t cap, double d)
{
    if (isnan(d)) return snprintf(o, cap, "nan");
    if (isinf(d)) return snprintf(o, cap, d < 0 ? "-inf" : "inf");
    if (d == 0) return snprintf(o, cap, signbit(d) ? "-0.0" : "0.0");
    char tmp[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, d);
        if (strtod(tmp, NULL) == d) break;
    }
    /* tmp: [-]D[.DDD]e[+-]XX */
    char digits[24];
    int nd = 0, neg = tmp[0] == '-';
    const char *p = tmp + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    char *w = o, *end = o + cap - 1;
#define PUT(c) do { if (w < end) *w++ = (c); } while (0)
    if (neg) PUT('-');
    if (e >= -4 && e < 16) {
        if (e >= 0) {
            for (int i = 0; i <= e; i++) PUT(i < nd ? digits[i] : '0');
            PUT('.');
            if (nd > e + 1) for (int i = e + 1; i < nd; i++) PUT(digits[i]);
            else PUT('0');
        } else {
            PUT('0');
            PUT('.');
            for (int i = 0; i < -e - 1; i++) PUT('0');
            for (int i = 0; i < nd; i++) PUT(digits[i]);
        }
    } else {
        PUT(digits[0]);
        if (nd > 1) {
            PUT('.');
            for (int i = 1; i < nd; i++) PUT(digits[i]);
        }
        PUT('e');
        PUT(e < 0 ? '-' : '+');
        int ae = e < 0 ? -e : e;
        if (ae >= 100) PUT((char)('0' + ae / 100));
        PUT((char)('0' + (ae / 10) % 10));
        PUT((char)('0' + ae % 10));
    }
#undef PUT
    *w = 0;
    return (int)(w - o);
}

static void write_repr(interp *I, sink *k, val v);

static const char *func_names[] = {"range", "namespace", "dict", "raise_exception", "strftime_now"};
enum { G_RANGE, G_NAMESPACE, G_DICT, G_RAISE, G_STRFTIME, G_N };

static const char *method_name(int m);

/* str(v) */
static void write_str(interp *I, sink *k, val v)
{
    char tmp[48];
    switch (v.t) {
    case VT_UNDEF: case VT_ABSENT: return;
    case VT_NONE: sink_put(I, k, "None", 4); return;
    case VT_BOOL: sink_puts(I, k, v.u.i ? "True" : "False"); return;
    case VT_INT: sink_printf(I, k, "%lld", (long long)v.u.i); return;
    case VT_FLOAT: sink_put(I, k, tmp, (size_t)fmt_pyfloat(tmp, sizeof tmp, v.u.f)); return;
    case VT_STR: sink_put(I, k, v.u.s, v.n); return;
    case VT_LIST:
        if (v.fl & VF_GEN) { sink_puts(I, k, "<generator object>"); return; }
        if (v.fl & VF_VIEW) {
            sink_puts(I, k, type_name(v));
            sink_putc(I, k, '(');
            val w = v;
            w.fl = 0;
            write_repr(I, k, w);
            sink_putc(I, k, ')');
            return;
        }
        deeper(I);
        sink_putc(I, k, (v.fl & VF_TUPLE) ? '(' : '[');
        for (uint32_t i = 0; i < v.u.l->n; i++) {
            if (i) sink_put(I, k, ", ", 2);
            write_repr(I, k, v.u.l->v[i]);
        }
        if ((v.fl & VF_TUPLE) && v.u.l->n == 1) sink_putc(I, k, ',');
        sink_putc(I, k, (v.fl & VF_TUPLE) ? ')' : ']');
        shallower(I);
        return;
    case VT_DICT:
        if (v.fl & VF_NS) {
            sink_puts(I, k, "<Namespace ");
            val d = v;
            d.fl = 0;
            write_str(I, k, d);
            sink_putc(I, k, '>');
            return;
        }
        deeper(I);
        sink_putc(I, k, '{');
        for (uint32_t i = 0; i < v.u.d->n; i++) {
            if (i) sink_put(I, k, ", ", 2);
            write_repr(I, k, v.u.d->k[i]);
            sink_put(I, k, ": ", 2);
            write_repr(I, k, v.u.d->v[i]);
        }
        sink_putc(I, k, '}');
        shallower(I);
        return;
    case VT_MACRO:
        sink_printf(I, k, "<Macro '%.*s'>", (int)(v.u.m->def->n > 40 ? 40 : v.u.m->def->n), v.u.m->def->s);
        return;
    case VT_FUNC: sink_printf(I, k, "<function %s>", func_names[v.u.i]); return;
    case VT_BOUND: sink_printf(I, k, "<built-in method %s>", method_name(v.u.b->method)); return;
    case VT_LOOP: sink_printf(I, k, "<LoopContext %u/%u>", v.u.lp->i + 1, v.u.lp->n); return;
    default: return;
    }
}

/* characters Python's str.isprintable() rejects (the common ones) */
static int py_unprintable(uint32_t c)
{
    return c < 0x20 || (c >= 0x7F && c <= 0xA0) || c == 0xAD || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200F) || (c >= 0x2028 && c <= 0x202F) ||
           (c >= 0x205F && c <= 0x206F) || c == 0x3000 || (c >= 0xD800 && c <= 0xF8FF) ||
           c == 0xFEFF || (c >= 0xFFF0 && c <= 0xFFFB) || c == 0xFFFE || c == 0xFFFF;
}

static void write_repr_str(interp *I, sink *k, const char *s, size_t n)
{
    int sq = memchr(s, '\'', n) != NULL, dq = memchr(s, '"', n) != NULL;
    char q = (sq && !dq) ? '"' : '\'';
    sink_putc(I, k, q);
    size_t run = 0;   /* bytes copied verbatim in one go */
    for (size_t i = 0; i < n;) {
        size_t len;
        uint32_t c = utf8_dec(s, n, i, &len);
        int esc = c == (uint32_t)q || c == '\\' || py_unprintable(c) || (len == 1 && c >= 0x80);
        if (!esc) { i += len; run += len; continue; }
        sink_put(I, k, s + i - run, run);
        run = 0;
        if (c == (uint32_t)q || c == '\\') { sink_putc(I, k, '\\'); sink_putc(I, k, (char)c); }
        else if (c == '\n') sink_put(I, k, "\\n", 2);
        else if (c == '\r') sink_put(I, k, "\\r", 2);
        else if (c == '\t') sink_put(I, k, "\\t", 2);
        else if (c < 0x100) sink_printf(I, k, "\\x%02x", c);
        else if (c < 0x10000) sink_printf(I, k, "\\u%04x", c);
        else sink_printf(I, k, "\\U%08x", c);
        i += len;
    }
    sink_put(I, k, s + n - run, run);
    sink_putc(I, k, q);
}

/* repr(v) */
static void write_repr(interp *I, sink *k, val v)
{
    if (v.t == VT_STR) {
        if (v.fl & VF_MARKUP) sink_puts(I, k, "Markup(");
        write_repr_str(I, k, v.u.s, v.n);
        if (v.fl & VF_MARKUP) sink_putc(I, k, ')');
    } else if (v.t == VT_UNDEF) {
        sink_puts(I, k, "Undefined");
    } else {
        write_str(I, k, v);
    }
}

/* str(v) as a value (strings are returned as they are) */
static val to_str(interp *I, val v)
{
    if (v.t == VT_STR) return v;
    if (v.t == VT_UNDEF || v.t == VT_ABSENT) return v_str("", 0);
    sink k = sink_arena(I);
    write_str(I, &k, v);
    return sink_val(I, &k);
}

/* ---- json.dumps, as HF's tojson filter calls it ---- */

typedef struct jsonopt {
    int ensure_ascii;
    int sort_keys;
    const char *indent;    /* NULL = no newlines */
    size_t indent_len;
    val item_sep, key_sep;
} jsonopt;

static void json_str(interp *I, sink *k, const char *s, size_t n, int ascii)
{
    sink_putc(I, k, '"');
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char b = (unsigned char)s[i];
        if (b >= 0x20 && b != '"' && b != '\\' && (b < 0x7F || (!ascii && b >= 0x80))) {
            i++;
            run++;
            continue;
        }
        sink_put(I, k, s + i - run, run);
        run = 0;
        size_t len = 1;
        uint32_t c = b;
        if (b >= 0x80) c = utf8_dec(s, n, i, &len);
        switch (c) {
        case '"': sink_put(I, k, "\\\"", 2); break;
        case '\\': sink_put(I, k, "\\\\", 2); break;
        case '\n': sink_put(I, k, "\\n", 2); break;
        case '\r': sink_put(I, k, "\\r", 2); break;
        case '\t': sink_put(I, k, "\\t", 2); break;
        case '\b': sink_put(I, k, "\\b", 2); break;
        case '\f': sink_put(I, k, "\\f", 2); break;
        default:
            if (c >= 0x10000) {
                uint32_t x = c - 0x10000;
                sink_printf(I, k, "\\u%04x\\u%04x", 0xD800 + (x >> 10), 0xDC00 + (x & 0x3FF));
            } else {
                sink_printf(I, k, "\\u%04x", c);
            }
        }
        i += len;
    }
    sink_put(I, k, s + n - run, run);
    sink_putc(I, k, '"');
}

static void json_newline(interp *I, sink *k, const jsonopt *o, int level)
{
    sink_putc(I, k, '\n');
    for (int i = 0; i < level; i++) sink_put(I, k, o->indent, o->indent_len);
}

static void write_json(interp *I, sink *k, val v, const jsonopt *o, int level)
{
    char tmp[48];
    switch (v.t) {
    case VT_NONE: sink_put(I, k, "null", 4); return;
    case VT_BOOL: sink_puts(I, k, v.u.i ? "true" : "false"); return;
    case VT_INT: sink_printf(I, k, "%lld", (long long)v.u.i); return;
    case VT_FLOAT:
        if (isnan(v.u.f)) sink_puts(I, k, "NaN");
        else if (isinf(v.u.f)) sink_puts(I, k, v.u.f < 0 ? "-Infinity" : "Infinity");
        else sink_put(I, k, tmp, (size_t)fmt_pyfloat(tmp, sizeof tmp, v.u.f));
        return;
    case VT_STR: json_str(I, k, v.u.s, v.n, o->ensure_ascii); return;
    case VT_LIST:
        if (v.fl & (VF_GEN | VF_VIEW)) break;
        if (v.u.l->n == 0) { sink_put(I, k, "[]", 2); return; }
        deeper(I);
        sink_putc(I, k, '[');
        for (uint32_t i = 0; i < v.u.l->n; i++) {
            if (i) sink_put(I, k, o->item_sep.u.s, o->item_sep.n);
            if (o->indent) json_newline(I, k, o, level + 1);
            write_json(I, k, v.u.l->v[i], o, level + 1);
        }
        if (o->indent) json_newline(I, k, o, level);
        sink_putc(I, k, ']');
        shallower(I);
        return;
    case VT_DICT: {
        if (v.fl & VF_NS) break;
        const vdict *d = v.u.d;
        if (d->n == 0) { sink_put(I, k, "{}", 2); return; }
        deeper(I);
        uint32_t *order = ialloc(I, d->n * sizeof(uint32_t), 4);
        for (uint32_t i = 0; i < d->n; i++) order[i] = i;
        if (o->sort_keys) {   /* insertion sort: stable, small dicts */
            for (uint32_t i = 1; i < d->n; i++) {
                uint32_t x = order[i], j = i;
                while (j > 0 && py_cmp(I, d->k[order[j - 1]], d->k[x]) > 0) { order[j] = order[j - 1]; j--; }
                order[j] = x;
                step(I);
            }
        }
        sink_putc(I, k, '{');
        for (uint32_t i = 0; i < d->n; i++) {
            val key = d->k[order[i]];
            if (i) sink_put(I, k, o->item_sep.u.s, o->item_sep.n);
            if (o->indent) json_newline(I, k, o, level + 1);
            if (key.t == VT_STR) json_str(I, k, key.u.s, key.n, o->ensure_ascii);
            else if (key.t == VT_NONE || key.t == VT_BOOL || key.t == VT_INT || key.t == VT_FLOAT) {
                sink_putc(I, k, '"');
                write_json(I, k, key, o, level);
                sink_putc(I, k, '"');
            } else {
                RFAIL(I, "keys must be str, int, float, bool or None, not %s", type_name(key));
            }
            sink_put(I, k, o->key_sep.u.s, o->key_sep.n);
            write_json(I, k, d->v[order[i]], o, level + 1);
        }
        if (o->indent) json_newline(I, k, o, level);
        sink_putc(I, k, '}');
        shallower(I);
        return;
    }
    default: break;
    }
    RFAIL(I, "Object of type %s is not JSON serializable", type_name(v));
}

/* markupsafe.escape */
static void write_escaped(interp *I, sink *k, const char *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *r = NULL;
        switch (s[i]) {
        case '&': r = "&amp;"; break;
        case '<': r = "&lt;"; break;
        case '>': r = "&gt;"; break;
        case '"': r = "&#34;"; break;
        case '\'': r = "&#39;"; break;
        default: run++; continue;
        }
        sink_put(I, k, s + i - run, run);
        run = 0;
        sink_puts(I, k, r);
    }
    sink_put(I, k, s + n - run, run);
}

static val markup_of(interp *I, val v)
{
    if (v.t == VT_STR && (v.fl & VF_MARKUP)) return v;
    v = to_str(I, v);
    sink k = sink_arena(I);
    write_escaped(I, &k, v.u.s, v.n);
    val r = sink_val(I, &k);
    r.fl = VF_MARKUP;
    return r;
}

/* ======================================================================
 * Iteration, attribute and item access
 * ====================================================================== */

/* The items a for loop / filter sees: lists as they are, dict keys, the
 * characters of a string, nothing for undefined. */
static void iterate(interp *I, val v, const val **items, uint32_t *n)
{
    switch (v.t) {
    case VT_LIST:
        if (v.fl & VF_GEN) {   /* consume the generator */
            vlist *l = v.u.l;
            *items = l->v ? l->v + l->pos : NULL;
            *n = l->n - l->pos;
            l->pos = l->n;
            return;
        }
        *items = v.u.l->v;
        *n = v.u.l->n;
        return;
    case VT_DICT:
        if (v.fl & VF_NS) break;
        *items = v.u.d->k;
        *n = v.u.d->n;
        return;
    case VT_UNDEF: *items = NULL; *n = 0; return;
    case VT_STR: {
        size_t count = utf8_count(v.u.s, v.n);
        val *out = ialloc(I, (count ? count : 1) * sizeof(val), 8);
        size_t j = 0;
        for (size_t i = 0; i < v.n; j++) {
            size_t len;
            utf8_dec(v.u.s, v.n, i, &len);
            out[j] = v_str(v.u.s + i, len);
            out[j].fl = v.fl & VF_MARKUP;
            i += len;
        }
        *items = out;
        *n = (uint32_t)count;
        return;
    }
    default: break;
    }
    RFAIL(I, "'%s' object is not iterable", type_name(v));
}

/* ---- methods of builtin types ---- */

enum {
    M_NONE = -1,
    /* str */
    M_STRIP, M_LSTRIP, M_RSTRIP, M_SPLIT, M_RSPLIT, M_SPLITLINES, M_STARTSWITH, M_ENDSWITH,
    M_REPLACE, M_UPPER, M_LOWER, M_TITLE, M_CAPITALIZE, M_FIND, M_RFIND, M_COUNT, M_INDEX,
    M_JOIN, M_FORMAT, M_ISDIGIT, M_ISALPHA, M_ISALNUM, M_ISSPACE, M_ISUPPER, M_ISLOWER,
    M_STR_END,
    /* dict */
    M_GET = M_STR_END, M_ITEMS, M_KEYS, M_VALUES, M_DICT_END,
    /* dict, mutating (CHAT_TMPL_MUTABLE only) */
    M_DPOP = M_DICT_END, M_UPDATE, M_SETDEFAULT, M_DICT_MUT_END,
    /* list */
    M_LINDEX = M_DICT_MUT_END, M_LCOUNT, M_LIST_END,
    /* list, mutating */
    M_APPEND = M_LIST_END, M_LPOP, M_EXTEND, M_INSERT, M_REMOVE, M_LIST_MUT_END,
    /* loop */
    M_CYCLE = M_LIST_MUT_END, M_END
};

static const char *const method_names[M_END] = {
    "strip", "lstrip", "rstrip", "split", "rsplit", "splitlines", "startswith", "endswith",
    "replace", "upper", "lower", "title", "capitalize", "find", "rfind", "count", "index",
    "join", "format", "isdigit", "isalpha", "isalnum", "isspace", "isupper", "islower",
    "get", "items", "keys", "values",
    "pop", "update", "setdefault",
    "index", "count",
    "append", "pop", "extend", "insert", "remove",
    "cycle"
};

static const char *method_name(int m) { return (m >= 0 && m < M_END) ? method_names[m] : "?"; }

static int method_in(const char *s, size_t n, int lo, int hi)
{
    for (int m = lo; m < hi; m++)
        if (name_eq(s, n, method_names[m])) return m;
    return M_NONE;
}

/* Python attribute names that exist on the type but that the immutable
 * sandbox refuses (mutators), for the error message. */
static int is_mutator(val obj, const char *s, size_t n)
{
    static const char *const lm[] = {"append", "pop", "extend", "insert", "remove", "reverse", "sort", "clear", NULL};
    static const char *const dm[] = {"pop", "popitem", "update", "setdefault", "clear", NULL};
    const char *const *t = obj.t == VT_LIST ? lm : obj.t == VT_DICT ? dm : NULL;
    for (; t && *t; t++)
        if (name_eq(s, n, *t)) return 1;
    return 0;
}

/* Method id for obj.name, or M_NONE. */
static int find_method(interp *I, val obj, const char *s, size_t n)
{
    int mut = (I->flags & CHAT_TMPL_MUTABLE) != 0;
    switch (obj.t) {
    case VT_STR: return method_in(s, n, 0, M_STR_END);
    case VT_DICT: {
        if (obj.fl & VF_NS) return M_NONE;
        int m = method_in(s, n, M_GET, M_DICT_END);
        if (m == M_NONE && mut) m = method_in(s, n, M_DPOP, M_DICT_MUT_END);
        return m;
    }
    case VT_LIST: {
        if (obj.fl & (VF_GEN | VF_VIEW)) return M_NONE;
        int m = method_in(s, n, M_LINDEX, M_LIST_END);
        if (m == M_NONE && mut && !(obj.fl & VF_TUPLE)) m = method_in(s, n, M_APPEND, M_LIST_MUT_END);
        return m;
    }
    case VT_LOOP: return name_eq(s, n, "cycle") ? M_CYCLE : M_NONE;
    default: return M_NONE;
    }
}

static val loop_attr(interp *I, const loopst *L, const char *s, size_t n)
{
    int64_t i = L->i, len = L->n;
    if (name_eq(s, n, "index")) return v_int(i + 1);
    if (name_eq(s, n, "index0")) return v_int(i);
    if (name_eq(s, n, "revindex")) return v_int(len - i);
    if (name_eq(s, n, "revindex0")) return v_int(len - i - 1);
    if (name_eq(s, n, "first")) return v_bool(i == 0);
    if (name_eq(s, n, "last")) return v_bool(i == len - 1);
    if (name_eq(s, n, "length")) return v_int(len);
    if (name_eq(s, n, "depth")) return v_int(1);
    if (name_eq(s, n, "depth0")) return v_int(0);
    if (name_eq(s, n, "previtem")) return i > 0 ? L->items[i - 1] : v_undef("previtem", 8);
    if (name_eq(s, n, "nextitem")) return i + 1 < len ? L->items[i + 1] : v_undef("nextitem", 8);
    (void)I;
    return v_undef(s, n);
}

static val bound_new(interp *I, val self, int m)
{
    bound *b = ialloc(I, sizeof *b, 8);
    b->self = self;
    b->method = m;
    val v = {0};
    v.t = VT_BOUND;
    v.u.b = b;
    return v;
}

/* obj.name (Jinja2's getattr: attribute first, then item) */
static val get_attr(interp *I, val obj, const char *s, size_t n)
{
    if (obj.t == VT_UNDEF) fail_undefined(I, obj);
    if (obj.t == VT_LOOP) {
        if (name_eq(s, n, "cycle")) return bound_new(I, obj, M_CYCLE);
        return loop_attr(I, obj.u.lp, s, n);
    }
    int m = find_method(I, obj, s, n);
    if (m != M_NONE) return bound_new(I, obj, m);
    if (is_mutator(obj, s, n)) return v_missing(obj, s, n, VF_UNSAFE);
    if (obj.t == VT_DICT) {
        int i = dict_find_str(obj.u.d, s, n);
        if (i >= 0) return obj.u.d->v[i];
    }
    return v_missing(obj, s, n, 0);
}

/* Python index normalization; returns -1 when out of range */
static int64_t norm_index(int64_t i, int64_t len)
{
    if (i < 0) i += len;
    return (i < 0 || i >= len) ? -1 : i;
}

/* byte offset of code point k in s (k <= count) */
static size_t cp_offset(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    while (k-- > 0 && i < n) {
        size_t len;
        utf8_dec(s, n, i, &len);
        i += len;
    }
    return i;
}

/* obj[key] (Jinja2's getitem: item first, then attribute for str keys) */
static val get_item(interp *I, val obj, val key)
{
    if (obj.t == VT_UNDEF) fail_undefined(I, obj);
    if (obj.t == VT_DICT && !(obj.fl & VF_NS)) {
        int i = dict_find(I, obj.u.d, key);
        if (i >= 0) return obj.u.d->v[i];
    } else if (obj.t == VT_LIST && !(obj.fl & (VF_GEN | VF_VIEW)) && is_intlike(key)) {
        int64_t i = norm_index(key.u.i, obj.u.l->n);
        if (i >= 0) return obj.u.l->v[i];
        return v_missing(obj, NULL, 0, 0);
    } else if (obj.t == VT_STR && is_intlike(key)) {
        size_t count = is_ascii(obj.u.s, obj.n) ? obj.n : utf8_count(obj.u.s, obj.n);
        int64_t i = norm_index(key.u.i, (int64_t)count);
        if (i < 0) return v_missing(obj, NULL, 0, 0);
        size_t off = count == obj.n ? (size_t)i : cp_offset(obj.u.s, obj.n, (size_t)i), len;
        utf8_dec(obj.u.s, obj.n, off, &len);
        val r = v_str(obj.u.s + off, len);
        r.fl = obj.fl & VF_MARKUP;
        return r;
    }
    if (key.t == VT_STR) return get_attr(I, obj, key.u.s, key.n);
    return v_missing(obj, NULL, 0, 0);
}

/* Python slice indices for a sequence of length len */
static void slice_indices(interp *I, val start, val stop, val stepv, int64_t len,
                          int64_t *b, int64_t *e, int64_t *st)
{
    int64_t s = 1;
    if (stepv.t != VT_NONE && stepv.t != VT_ABSENT) {
        s = stepv.u.i;
        if (s == 0) RFAIL(I, "slice step cannot be zero");
    }
    int64_t lo_def = s > 0 ? 0 : len - 1, hi_def = s > 0 ? len : -1;
    int64_t x[2];
    val in[2] = {start, stop};
    for (int k = 0; k < 2; k++) {
        if (in[k].t == VT_NONE || in[k].t == VT_ABSENT) { x[k] = k ? hi_def : lo_def; continue; }
        int64_t v = in[k].u.i;
        if (v < 0) {
            v += len;
            if (v < 0) v = s > 0 ? 0 : -1;
        } else if (v >= len) {
            v = s > 0 ? len : len - 1;
        }
        x[k] = v;
    }
    *b = x[0];
    *e = x[1];
    *st = s;
}

static int slice_arg_ok(val v) { return v.t == VT_NONE || v.t == VT_ABSENT || is_intlike(v); }

static val do_slice(interp *I, val obj, val start, val stop, val stepv)
{
    if (obj.t == VT_UNDEF) fail_undefined(I, obj);
    /* Jinja2 subscripts slices directly (not through its lenient getitem) */
    if (!slice_arg_ok(start) || !slice_arg_ok(stop) || !slice_arg_ok(stepv))
        RFAIL(I, "slice indices must be integers or None or have an __index__ method");
    int64_t b, e, s;
    if (obj.t == VT_LIST && !(obj.fl & (VF_GEN | VF_VIEW))) {
        slice_indices(I, start, stop, stepv, obj.u.l->n, &b, &e, &s);
        vlist *l = list_new(I, 0);
        if (s == 1 && e > b) {   /* a view: lists are immutable unless MUTABLE */
            if (!(I->flags & CHAT_TMPL_MUTABLE)) {
                l->v = obj.u.l->v + b;
                l->n = l->cap = (uint32_t)(e - b);
                return v_list(l, obj.fl & VF_TUPLE);
            }
        }
        for (int64_t i = b; s > 0 ? i < e : i > e; i += s) { list_push(I, l, obj.u.l->v[i]); step(I); }
        return v_list(l, obj.fl & VF_TUPLE);
    }
    if (obj.t == VT_STR) {
        int ascii = is_ascii(obj.u.s, obj.n);
        size_t count = ascii ? obj.n : utf8_count(obj.u.s, obj.n);
        slice_indices(I, start, stop, stepv, (int64_t)count, &b, &e, &s);
        val r;
        if (s == 1) {
            if (e <= b) return v_str("", 0);
            size_t ob = ascii ? (size_t)b : cp_offset(obj.u.s, obj.n, (size_t)b);
            size_t oe = ascii ? (size_t)e : ob + cp_offset(obj.u.s + ob, obj.n - ob, (size_t)(e - b));
            r = v_str(obj.u.s + ob, oe - ob);
        } else {
            /* general step: code point offsets first */
            size_t *off = ialloc(I, (count + 1) * sizeof(size_t), 8);
            for (size_t i = 0, j = 0; j <= count; j++) {
                off[j] = i;
                if (i < obj.n) { size_t len; utf8_dec(obj.u.s, obj.n, i, &len); i += len; }
            }
            sink k = sink_arena(I);
            for (int64_t i = b; s > 0 ? i < e : i > e; i += s) {
                sink_put(I, &k, obj.u.s + off[i], off[i + 1] - off[i]);
                step(I);
            }
            r = sink_val(I, &k);
        }
        r.fl = obj.fl & VF_MARKUP;
        return r;
    }
    return v_undef(NULL, 0);
}

/* ======================================================================
 * Operators
 * ====================================================================== */

static val py_percent(interp *I, val fmt, const val *args, uint32_t nargs, const vdict *map, int lenient);
static int64_t need_int(interp *I, val v, const char *what);

static val str_concat(interp *I, val a, val b)
{
    /* markupsafe: Markup + str escapes the str and stays Markup */
    int markup = (a.fl | b.fl) & VF_MARKUP;
    if (markup) {
        a = markup_of(I, a);
        b = markup_of(I, b);
    }
    if (a.n == 0 && !markup) return b;
    if (b.n == 0 && !markup) return a;
    if ((uint64_t)a.n + b.n > UINT32_MAX) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "string too long");
    char *p = ialloc(I, (size_t)a.n + b.n, 1);
    memcpy(p, a.u.s, a.n);
    memcpy(p + a.n, b.u.s, b.n);
    val r = v_str(p, (size_t)a.n + b.n);
    r.fl = (uint8_t)markup;
    return r;
}

static val repeat(interp *I, val seq, int64_t times)
{
    if (times < 0) times = 0;
    if (seq.t == VT_STR) {
        if (times && (uint64_t)seq.n * (uint64_t)times > UINT32_MAX) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "string too long");
        sink k = sink_arena(I);
        for (int64_t i = 0; i < times; i++) { sink_put(I, &k, seq.u.s, seq.n); step(I); }
        val r = sink_val(I, &k);
        r.fl = seq.fl & VF_MARKUP;
        return r;
    }
    if ((uint64_t)seq.u.l->n * (uint64_t)times > (1u << 24)) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "list too long");
    vlist *l = list_new(I, (size_t)(seq.u.l->n * times));
    for (int64_t i = 0; i < times; i++)
        for (uint32_t j = 0; j < seq.u.l->n; j++) { list_push(I, l, seq.u.l->v[j]); step(I); }
    return v_list(l, seq.fl & VF_TUPLE);
}

static int64_t floordiv_i(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b != 0) && ((a < 0) != (b < 0))) q--;
    return q;
}

static val binop(interp *I, int op, val a, val b)
{
    static const char *const sym[] = {
        [OP_ADD] = "+", [OP_SUB] = "-", [OP_MUL] = "*", [OP_DIV] = "/", [OP_FLOORDIV] = "//",
        [OP_MOD] = "%", [OP_POW] = "**"
    };
    if (a.t == VT_UNDEF) fail_undefined(I, a);
    if (op == OP_MOD && a.t == VT_STR && b.t == VT_UNDEF)   /* str % x runs before x's own % */
        return py_percent(I, a, &b, 1, NULL, 1);
    if (b.t == VT_UNDEF) fail_undefined(I, b);
    if (is_num(a) && is_num(b)) {
        if (a.t != VT_FLOAT && b.t != VT_FLOAT && op != OP_DIV) {
            int64_t x = a.u.i, y = b.u.i, r;
            switch (op) {
            case OP_ADD: if (__builtin_add_overflow(x, y, &r)) goto ovf; return v_int(r);
            case OP_SUB: if (__builtin_sub_overflow(x, y, &r)) goto ovf; return v_int(r);
            case OP_MUL: if (__builtin_mul_overflow(x, y, &r)) goto ovf; return v_int(r);
            case OP_FLOORDIV:
                if (y == 0) RFAIL(I, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) goto ovf;
                return v_int(floordiv_i(x, y));
            case OP_MOD:
                if (y == 0) RFAIL(I, "integer division or modulo by zero");
                if (y == -1) return v_int(0);
                r = x % y;
                if (r != 0 && ((r < 0) != (y < 0))) r += y;
                return v_int(r);
            case OP_POW:
                if (y < 0) {
                    if (x == 0) RFAIL(I, "0.0 cannot be raised to a negative power");
                    return v_float(pow((double)x, (double)y));
                }
                r = 1;
                for (int64_t i = 0; i < y; i++) {
                    if (__builtin_mul_overflow(r, x, &r)) goto ovf;
                    if (r == 0 || r == 1) break;
                    if (r == -1) { r = (y - i - 1) % 2 ? -r : r; break; }
                }
                return v_int(r);
            }
        }
        double x = num_f(a), y = num_f(b);
        switch (op) {
        case OP_ADD: return v_float(x + y);
        case OP_SUB: return v_float(x - y);
        case OP_MUL: return v_float(x * y);
        case OP_DIV:
            if (y == 0) RFAIL(I, "division by zero");
            return v_float(x / y);
        case OP_FLOORDIV:
            if (y == 0) RFAIL(I, "float floor division by zero");
            return v_float(floor(x / y));
        case OP_MOD: {
            if (y == 0) RFAIL(I, "float modulo");
            double r = fmod(x, y);
            if (r != 0 && ((r < 0) != (y < 0))) r += y;
            return v_float(r);
        }
        case OP_POW: {
            if (x == 0 && y < 0) RFAIL(I, "0.0 cannot be raised to a negative power");
            if (x < 0 && y != floor(y))
                IFAIL(I, CHAT_TMPL_ERR_UNSUPPORTED, "complex numbers are not supported");
            double r = pow(x, y);
            if (isinf(r) && isfinite(x) && isfinite(y)) RFAIL(I, "numerical result out of range");
            return v_float(r);
        }
        }
    }
    if (op == OP_ADD && a.t == VT_STR && b.t == VT_STR) return str_concat(I, a, b);
    if (op == OP_ADD && a.t == VT_LIST && b.t == VT_LIST && !((a.fl | b.fl) & (VF_GEN | VF_VIEW)) &&
        (a.fl & VF_TUPLE) == (b.fl & VF_TUPLE)) {
        vlist *l = list_new(I, (size_t)a.u.l->n + b.u.l->n);
        for (uint32_t i = 0; i < a.u.l->n; i++) l->v[l->n++] = a.u.l->v[i];
        for (uint32_t i = 0; i < b.u.l->n; i++) l->v[l->n++] = b.u.l->v[i];
        return v_list(l, a.fl & VF_TUPLE);
    }
    if (op == OP_MUL) {
        if ((a.t == VT_STR || (a.t == VT_LIST && !(a.fl & (VF_GEN | VF_VIEW)))) && is_intlike(b)) return repeat(I, a, b.u.i);
        if ((b.t == VT_STR || (b.t == VT_LIST && !(b.fl & (VF_GEN | VF_VIEW)))) && is_intlike(a)) return repeat(I, b, a.u.i);
    }
    if (op == OP_MOD && a.t == VT_STR) {
        if (b.t == VT_LIST && (b.fl & VF_TUPLE)) return py_percent(I, a, b.u.l->v, b.u.l->n, NULL, 0);
        int subscriptable = (b.t == VT_LIST && !(b.fl & (VF_GEN | VF_VIEW))) || b.t == VT_DICT;
        /* %(name)s needs a real dict; otherwise the value is one argument */
        if (b.t == VT_DICT && !(b.fl & VF_NS) && memmem(a.u.s, a.n, "%(", 2))
            return py_percent(I, a, &b, 1, b.u.d, 0);
        return py_percent(I, a, &b, 1, NULL, subscriptable);
    }
    RFAIL(I, "unsupported operand type(s) for %s: '%s' and '%s'", sym[op], type_name(a), type_name(b));
ovf:
    RFAIL(I, "integer overflow");
}

/* `item in container` */
static int contains(interp *I, val container, val item)
{
    switch (container.t) {
    case VT_STR:
        if (item.t != VT_STR) RFAIL(I, "'in <string>' requires string as left operand, not %s", type_name(item));
        if (item.n == 0) return 1;
        if (item.n > container.n) return 0;
        return memmem(container.u.s, container.n, item.u.s, item.n) != NULL;
    case VT_LIST: {
        vlist *l = container.u.l;
        int gen = (container.fl & VF_GEN) != 0;
        for (uint32_t i = gen ? l->pos : 0; i < l->n; i++)
            if (py_eq(I, l->v[i], item)) {
                if (gen) l->pos = i + 1;   /* `in` consumes up to the match */
                return 1;
            }
        if (gen) l->pos = l->n;
        return 0;
    }
    case VT_DICT:
        if (container.fl & VF_NS) break;
        return dict_find(I, container.u.d, item) >= 0;
    case VT_UNDEF: return 0;
    default: break;
    }
    RFAIL(I, "argument of type '%s' is not iterable", type_name(container));
}

static int compare_op(interp *I, int op, val a, val b)
{
    switch (op) {
    case OP_EQ: return py_eq(I, a, b);
    case OP_NE: return !py_eq(I, a, b);
    case OP_LT: return py_cmp(I, a, b) < 0;
    case OP_LTEQ: return py_cmp(I, a, b) <= 0;
    case OP_GT: return py_cmp(I, a, b) > 0;
    case OP_GTEQ: return py_cmp(I, a, b) >= 0;
    case OP_IN: return contains(I, b, a);
    case OP_NOTIN: return !contains(I, b, a);
    }
    return 0;
}

/* ======================================================================
 * printf-style formatting: 'fmt' % args and the format filter
 * ====================================================================== */

static val to_str(interp *I, val v);

/* Python's str % values: values is a tuple of arguments, or one mapping
 * for %(name)s. Conversions s r a d i u f F e E g G x X o c and %. */
static val py_percent(interp *I, val fmt, const val *args, uint32_t nargs, const vdict *map, int lenient)
{
    sink k = sink_arena(I);
    const char *s = fmt.u.s;
    size_t n = fmt.n;
    uint32_t ai = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '%') { sink_putc(I, &k, s[i]); continue; }
        if (++i >= n) RFAIL(I, "incomplete format");
        val v = v_absent();
        if (s[i] == '(') {
            size_t b = ++i;
            while (i < n && s[i] != ')') i++;
            if (i >= n) RFAIL(I, "incomplete format key");
            if (!map) RFAIL(I, "format requires a mapping");
            int j = dict_find_str(map, s + b, i - b);
            if (j < 0) RFAIL(I, "KeyError: '%.*s'", (int)(i - b > 40 ? 40 : i - b), s + b);
            v = map->v[j];
            i++;
        }
        char flags[8];
        int nf = 0;
        while (i < n && strchr("-+ 0#", s[i]) && nf < 6) flags[nf++] = s[i++];
        flags[nf] = 0;
        int width = -1, prec = -1;
        if (i < n && s[i] == '*') {
            if (ai >= nargs) RFAIL(I, "not enough arguments for format string");
            width = (int)need_int(I, args[ai++], "* width");
            i++;
        } else {
            while (i < n && is_digit(s[i]) && width < 100000) width = (width < 0 ? 0 : width * 10) + (s[i++] - '0');
        }
        if (i < n && s[i] == '.') {
            i++;
            prec = 0;
            while (i < n && is_digit(s[i]) && prec < 1000) prec = prec * 10 + (s[i++] - '0');
        }
        while (i < n && (s[i] == 'l' || s[i] == 'h' || s[i] == 'L')) i++;
        if (i >= n) RFAIL(I, "incomplete format");
        char c = s[i];
        if (c == '%') { sink_putc(I, &k, '%'); continue; }
        if (v.t == VT_ABSENT) {
            if (map) RFAIL(I, "format requires a mapping");
            if (ai >= nargs) RFAIL(I, "not enough arguments for format string");
            v = args[ai++];
        }
        if (width > 4096) width = 4096;
        char spec[32], buf[4400];
        int m = -1;
        switch (c) {
        case 's': case 'r': case 'a': {
            val t;
            if (c == 's') t = to_str(I, v);
            else { sink r = sink_arena(I); write_repr(I, &r, v); t = sink_val(I, &r); }
            size_t len = t.n;
            if (prec >= 0) len = cp_offset(t.u.s, t.n, (size_t)prec);
            size_t cps = utf8_count(t.u.s, len);
            int left = strchr(flags, '-') != NULL;
            if (!left) for (int w = (int)cps; w < width; w++) sink_putc(I, &k, ' ');
            sink_put(I, &k, t.u.s, len);
            if (left) for (int w = (int)cps; w < width; w++) sink_putc(I, &k, ' ');
            continue;
        }
        case 'd': case 'i': case 'u': case 'x': case 'X': case 'o': case 'c': {
            int64_t x;
            if (v.t == VT_FLOAT && c != 'c') {
                if (!isfinite(v.u.f) || fabs(v.u.f) >= 9.2e18) RFAIL(I, "cannot convert float to integer");
                x = (int64_t)v.u.f;
            } else if (is_intlike(v)) {
                x = v.u.i;
            } else {
                RFAIL(I, "%%%c format: a number is required, not %s", c, type_name(v));
            }
            if (c == 'c') {
                if (x < 0 || x > 0x10FFFF) RFAIL(I, "%%c arg not in range(0x110000)");
                m = utf8_enc((uint32_t)x, buf);
                break;
            }
            char conv = c == 'i' || c == 'u' ? 'd' : c;
            if (prec >= 0) snprintf(spec, sizeof spec, "%%%s%d.%d%s%c", flags, width < 0 ? 0 : width, prec, "ll", conv);
            else snprintf(spec, sizeof spec, "%%%s%d%s%c", flags, width < 0 ? 0 : width, "ll", conv);
            if (conv == 'd') m = snprintf(buf, sizeof buf, spec, (long long)x);
            else {   /* Python prints negative hex/octal with a sign */
                unsigned long long ux = x < 0 ? (unsigned long long)0 - (unsigned long long)x : (unsigned long long)x;
                m = snprintf(buf + (x < 0), sizeof buf - 1, spec, ux) + (x < 0);
                if (x < 0) buf[0] = '-';
            }
            break;
        }
        case 'f': case 'F': case 'e': case 'E': case 'g': case 'G': {
            if (v.t == VT_UNDEF) fail_undefined(I, v);
            if (!is_num(v)) RFAIL(I, "%%%c format: a real number is required, not %s", c, type_name(v));
            snprintf(spec, sizeof spec, "%%%s%d.%d%c", flags, width < 0 ? 0 : width, prec < 0 ? 6 : (prec > 300 ? 300 : prec), c);
            m = snprintf(buf, sizeof buf, spec, num_f(v));
            break;
        }
        default:
            RFAIL(I, "unsupported format character '%c'", c);
        }
        if (m > 0) sink_put(I, &k, buf, (size_t)m < sizeof buf ? (size_t)m : sizeof buf - 1);
    }
    /* Python skips this check when the argument is a mapping or any
     * subscriptable non-tuple (a list) */
    if (ai < nargs && !map && !lenient) RFAIL(I, "not all arguments converted during string formatting");
    return sink_val(I, &k);
}

/* ======================================================================
 * Call arguments
 * ====================================================================== */

/* Bind arguments to parameter names (positional in order, then by
 * keyword). Unset slots are VT_ABSENT. Extra or unknown arguments are a
 * render error naming fname. */
static void bind(interp *I, const args *A, const char *fname, const char *const *names, int nn, val *out)
{
    for (int i = 0; i < nn; i++) out[i] = v_absent();
    int pos = 0;
    for (int i = 0; i < A->n; i++) {
        const arg *x = &A->a[i];
        if (!x->kw) {
            if (pos >= nn) RFAIL(I, "%s() takes at most %d argument(s)", fname, nn);
            out[pos++] = x->v;
            continue;
        }
        int j = 0;
        while (j < nn && !name_eq(x->kw, x->kwn, names[j])) j++;
        if (j == nn)
            RFAIL(I, "%s() got an unexpected keyword argument '%.*s'", fname, (int)(x->kwn > 40 ? 40 : x->kwn), x->kw);
        out[j] = x->v;
    }
}

static int given(val v) { return v.t != VT_ABSENT; }

static val need_str(interp *I, val v, const char *what)
{
    if (v.t == VT_UNDEF) fail_undefined(I, v);
    if (v.t != VT_STR) RFAIL(I, "%s must be a string, not %s", what, type_name(v));
    return v;
}

static int64_t need_int(interp *I, val v, const char *what)
{
    if (v.t == VT_UNDEF) fail_undefined(I, v);
    if (!is_intlike(v)) RFAIL(I, "%s must be an integer, not %s", what, type_name(v));
    return v.u.i;
}

/* ======================================================================
 * String methods (Python str semantics; case mapping is ASCII only)
 * ====================================================================== */

static int cp_in_set(uint32_t c, val chars)
{
    for (size_t i = 0; i < chars.n;) {
        size_t len;
        if (utf8_dec(chars.u.s, chars.n, i, &len) == c) return 1;
        i += len;
    }
    return 0;
}

static val str_strip(interp *I, val s, val chars, int left, int right)
{
    int ws = !given(chars) || chars.t == VT_NONE;
    if (!ws) need_str(I, chars, "strip argument");
    size_t b = 0, e = s.n, len;
    if (left)
        while (b < e) {
            uint32_t c = utf8_dec(s.u.s, e, b, &len);
            if (ws ? !py_space(c) : !cp_in_set(c, chars)) break;
            b += len;
        }
    if (right)
        while (e > b) {
            size_t j = utf8_prev(s.u.s, e);
            if (j < b) j = b;
            uint32_t c = utf8_dec(s.u.s, e, j, &len);
            if (ws ? !py_space(c) : !cp_in_set(c, chars)) break;
            e = j;
        }
    val r = v_str(s.u.s + b, e - b);
    r.fl = s.fl & VF_MARKUP;
    return r;
}

static val str_case(interp *I, val s, int mode)   /* 0 lower, 1 upper, 2 capitalize, 3 title */
{
    char *p = ialloc(I, s.n ? s.n : 1, 1);
    int prev_cased = 0;
    for (size_t i = 0; i < s.n; i++) {
        int c = (unsigned char)s.u.s[i];
        int cased = is_lower_ascii(c) || is_upper_ascii(c);
        if (mode == 0) c = to_lower_ascii(c);
        else if (mode == 1) c = to_upper_ascii(c);
        else if (mode == 2) c = i == 0 ? to_upper_ascii(c) : to_lower_ascii(c);
        else c = prev_cased ? to_lower_ascii(c) : to_upper_ascii(c);
        prev_cased = cased;
        p[i] = (char)c;
    }
    val r = v_str(p, s.n);
    r.fl = s.fl & VF_MARKUP;
    return r;
}

static val substr(val s, size_t b, size_t e)
{
    val r = v_str(s.u.s + b, e - b);
    r.fl = s.fl & VF_MARKUP;
    return r;
}

static val str_split(interp *I, val s, val sepv, val maxv, int from_right)
{
    int64_t maxsplit = given(maxv) && maxv.t != VT_NONE ? need_int(I, maxv, "maxsplit") : -1;
    vlist *l = list_new(I, 0);
    const char *p = s.u.s;
    size_t n = s.n;
    if (!given(sepv) || sepv.t == VT_NONE) {
        if (!from_right) {
            size_t i = 0;
            while (i < n) {
                size_t len;
                while (i < n && py_space(utf8_dec(p, n, i, &len))) i += len;
                if (i >= n) break;
                if (maxsplit >= 0 && (int64_t)l->n >= maxsplit) {
                    list_push(I, l, substr(s, i, n));   /* the rest, as it is */
                    break;
                }
                size_t b = i;
                while (i < n && !py_space(utf8_dec(p, n, i, &len))) i += len;
                list_push(I, l, substr(s, b, i));
                step(I);
            }
        } else {
            size_t e = n;
            vlist *r = list_new(I, 0);
            while (e > 0) {
                size_t len;
                while (e > 0) {
                    size_t j = utf8_prev(p, e);
                    if (!py_space(utf8_dec(p, e, j, &len))) break;
                    e = j;
                }
                if (e == 0) break;
                if (maxsplit >= 0 && (int64_t)r->n >= maxsplit) {
                    list_push(I, r, substr(s, 0, e));   /* the rest, as it is */
                    break;
                }
                size_t b = e;
                while (b > 0) {
                    size_t j = utf8_prev(p, b);
                    if (py_space(utf8_dec(p, b, j, &len))) break;
                    b = j;
                }
                list_push(I, r, substr(s, b, e));
                e = b;
                step(I);
            }
            for (uint32_t i = r->n; i-- > 0;) list_push(I, l, r->v[i]);
        }
        return v_list(l, 0);
    }
    val sep = need_str(I, sepv, "separator");
    if (sep.n == 0) RFAIL(I, "empty separator");
    if (!from_right) {
        size_t b = 0;
        for (;;) {
            const char *hit = (maxsplit < 0 || (int64_t)l->n < maxsplit)
                            ? memmem(p + b, n - b, sep.u.s, sep.n) : NULL;
            if (!hit) { list_push(I, l, substr(s, b, n)); break; }
            list_push(I, l, substr(s, b, (size_t)(hit - p)));
            b = (size_t)(hit - p) + sep.n;
            step(I);
        }
    } else {
        vlist *r = list_new(I, 0);
        size_t e = n;
        for (;;) {
            size_t found = SIZE_MAX;
            if ((maxsplit < 0 || (int64_t)r->n < maxsplit) && e >= sep.n)
                for (size_t i = e - sep.n + 1; i-- > 0;)
                    if (memcmp(p + i, sep.u.s, sep.n) == 0) { found = i; break; }
            if (found == SIZE_MAX) { list_push(I, r, substr(s, 0, e)); break; }
            list_push(I, r, substr(s, found + sep.n, e));
            e = found;
            step(I);
        }
        for (uint32_t i = r->n; i-- > 0;) list_push(I, l, r->v[i]);
    }
    return v_list(l, 0);
}

static val str_splitlines(interp *I, val s, int keepends)
{
    vlist *l = list_new(I, 0);
    size_t b = 0, i = 0;
    while (i < s.n) {
        size_t len;
        uint32_t c = utf8_dec(s.u.s, s.n, i, &len);
        if (!py_linebreak(c)) { i += len; continue; }
        size_t e = i + len;
        if (c == '\r' && e < s.n && s.u.s[e] == '\n') e++;
        list_push(I, l, substr(s, b, keepends ? e : i));
        b = i = e;
        step(I);
    }
    if (b < s.n) list_push(I, l, substr(s, b, s.n));
    return v_list(l, 0);
}

static val str_replace(interp *I, val s, val old, val nw, int64_t count)
{
    if (count < 0) count = INT64_MAX;
    sink k = sink_arena(I);
    if (old.n == 0) {
        int64_t done = 0;
        for (size_t i = 0; i <= s.n;) {
            if (done < count) { sink_put(I, &k, nw.u.s, nw.n); done++; }
            if (i == s.n) break;
            size_t len;
            utf8_dec(s.u.s, s.n, i, &len);
            sink_put(I, &k, s.u.s + i, len);
            i += len;
            step(I);
        }
    } else {
        size_t b = 0;
        int64_t done = 0;
        while (done < count) {
            const char *hit = memmem(s.u.s + b, s.n - b, old.u.s, old.n);
            if (!hit) break;
            sink_put(I, &k, s.u.s + b, (size_t)(hit - s.u.s) - b);
            sink_put(I, &k, nw.u.s, nw.n);
            b = (size_t)(hit - s.u.s) + old.n;
            done++;
            step(I);
        }
        if (done == 0) return s;
        sink_put(I, &k, s.u.s + b, s.n - b);
    }
    return sink_val(I, &k);
}

static val str_join(interp *I, val sep, val it)
{
    const val *items;
    uint32_t n;
    iterate(I, it, &items, &n);
    sink k = sink_arena(I);
    for (uint32_t i = 0; i < n; i++) {
        if (items[i].t != VT_STR)
            RFAIL(I, "sequence item %u: expected str instance, %s found", i, type_name(items[i]));
        if (i) sink_put(I, &k, sep.u.s, sep.n);
        sink_put(I, &k, items[i].u.s, items[i].n);
        step(I);
    }
    return sink_val(I, &k);
}

/* str.format: {} {0} {name} {{ }} with optional !s/!r; format specs are
 * not supported */
static val str_format(interp *I, val fmt, const args *A)
{
    sink k = sink_arena(I);
    const char *s = fmt.u.s;
    size_t n = fmt.n;
    int autoidx = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '}' ) {
            if (i + 1 < n && s[i + 1] == '}') { sink_putc(I, &k, '}'); i++; continue; }
            RFAIL(I, "single '}' encountered in format string");
        }
        if (c != '{') { sink_putc(I, &k, c); continue; }
        if (i + 1 < n && s[i + 1] == '{') { sink_putc(I, &k, '{'); i++; continue; }
        size_t j = i + 1;
        while (j < n && s[j] != '}') j++;
        if (j >= n) RFAIL(I, "single '{' encountered in format string");
        const char *f = s + i + 1;
        size_t fl = j - i - 1, nl = 0;
        while (nl < fl && f[nl] != '!' && f[nl] != ':') nl++;
        int conv_r = 0;
        if (nl < fl && f[nl] == '!') {
            if (nl + 1 >= fl || !strchr("sra", f[nl + 1])) RFAIL(I, "format: unknown conversion specifier");
            if (nl + 2 < fl && f[nl + 2] != ':') RFAIL(I, "format: expected ':' after conversion specifier");
            conv_r = f[nl + 1] != 's';
        }
        size_t spec = nl;
        while (spec < fl && f[spec] != ':') spec++;
        if (spec < fl && spec + 1 < fl) IFAIL(I, CHAT_TMPL_ERR_UNSUPPORTED, "format specs in str.format are not supported");
        val v = v_absent();
        int digits = nl > 0;
        for (size_t q = 0; q < nl; q++) {
            if (f[q] == '.' || f[q] == '[')
                IFAIL(I, CHAT_TMPL_ERR_UNSUPPORTED, "attribute/index access in str.format fields is not supported");
            if (!is_digit(f[q])) digits = 0;
        }
        if (nl == 0 || digits) {
            if (nl == 0 ? autoidx < 0 : autoidx > 0)
                RFAIL(I, "cannot switch between automatic and manual field numbering");
            int idx = 0;
            if (nl == 0) idx = autoidx++;
            else {
                for (size_t q = 0; q < nl && idx < 100000; q++) idx = idx * 10 + (f[q] - '0');
                autoidx = -1;
            }
            int seen = 0;
            for (int a = 0; a < A->n; a++)
                if (!A->a[a].kw && seen++ == idx) v = A->a[a].v;
            if (!given(v)) RFAIL(I, "format: replacement index %d out of range", idx);
        } else {
            for (int a = 0; a < A->n; a++)
                if (A->a[a].kw && A->a[a].kwn == nl && memcmp(A->a[a].kw, f, nl) == 0) v = A->a[a].v;
        }
        if (!given(v)) RFAIL(I, "format: replacement field '%.*s' has no argument", (int)(fl > 30 ? 30 : fl), f);
        if (conv_r) write_repr(I, &k, v);
        else write_str(I, &k, v);
        i = j;
    }
    return sink_val(I, &k);
}

static size_t cp_index(val s, size_t byte_off)
{
    return is_ascii(s.u.s, byte_off) ? byte_off : utf8_count(s.u.s, byte_off);
}

static int str_pred(val s, int which)   /* isdigit isalpha isalnum isspace isupper islower */
{
    if (s.n == 0) return 0;
    int any_cased = 0;
    for (size_t i = 0; i < s.n;) {
        size_t len;
        uint32_t c = utf8_dec(s.u.s, s.n, i, &len);
        i += len;
        switch (which) {
        case M_ISDIGIT: if (!(c >= '0' && c <= '9')) return 0; break;
        case M_ISALPHA: if (!(c < 128 ? (is_lower_ascii((int)c) || is_upper_ascii((int)c)) : c > 0xBF)) return 0; break;
        case M_ISALNUM: if (!(c < 128 ? is_name_char((int)c) && c != '_' : c > 0xBF)) return 0; break;
        case M_ISSPACE: if (!py_space(c)) return 0; break;
        case M_ISUPPER: if (is_lower_ascii((int)c)) return 0; if (is_upper_ascii((int)c)) any_cased = 1; break;
        case M_ISLOWER: if (is_upper_ascii((int)c)) return 0; if (is_lower_ascii((int)c)) any_cased = 1; break;
        }
    }
    return (which == M_ISUPPER || which == M_ISLOWER) ? any_cased : 1;
}

static int str_affix(interp *I, val s, val fix, int end)
{
    if (fix.t == VT_LIST && (fix.fl & VF_TUPLE)) {
        for (uint32_t i = 0; i < fix.u.l->n; i++)
            if (str_affix(I, s, fix.u.l->v[i], end)) return 1;
        return 0;
    }
    if (fix.t != VT_STR)
        RFAIL(I, "%s first arg must be str or a tuple of str, not %s", end ? "endswith" : "startswith", type_name(fix));
    if (fix.n > s.n) return 0;
    return memcmp(s.u.s + (end ? s.n - fix.n : 0), fix.u.s, fix.n) == 0;
}

static val call_method(interp *I, val self, int m, const args *A)
{
    static const char *const p_chars[] = {"chars"};
    static const char *const p_split[] = {"sep", "maxsplit"};
    static const char *const p_keep[] = {"keepends"};
    static const char *const p_affix[] = {"prefix", "start", "end"};
    static const char *const p_repl[] = {"old", "new", "count"};
    static const char *const p_find[] = {"sub", "start", "end"};
    static const char *const p_one[] = {"x"};
    static const char *const p_two[] = {"a", "b"};
    static const char *const p_none[] = {NULL};
    val p[3];
    const char *name = method_name(m);
    step(I);
    switch (m) {
    case M_STRIP: case M_LSTRIP: case M_RSTRIP:
        bind(I, A, name, p_chars, 1, p);
        return str_strip(I, self, p[0], m != M_RSTRIP, m != M_LSTRIP);
    case M_SPLIT: case M_RSPLIT:
        bind(I, A, name, p_split, 2, p);
        return str_split(I, self, p[0], p[1], m == M_RSPLIT);
    case M_SPLITLINES:
        bind(I, A, name, p_keep, 1, p);
        return str_splitlines(I, self, given(p[0]) && truthy(p[0]));
    case M_STARTSWITH: case M_ENDSWITH:
        bind(I, A, name, p_affix, 3, p);
        if (given(p[1]) || given(p[2]))
            IFAIL(I, CHAT_TMPL_ERR_UNSUPPORTED, "%s(start, end) is not supported", name);
        return v_bool(str_affix(I, self, p[0], m == M_ENDSWITH));
    case M_REPLACE: {
        bind(I, A, name, p_repl, 3, p);
        val old = need_str(I, p[0], "replace() argument 1"), nw = need_str(I, p[1], "replace() argument 2");
        if (self.fl & VF_MARKUP) { old = markup_of(I, old); nw = markup_of(I, nw); }
        val r = str_replace(I, self, old, nw, given(p[2]) ? need_int(I, p[2], "count") : -1);
        r.fl = self.fl & VF_MARKUP;
        return r;
    }
    case M_UPPER: case M_LOWER: case M_TITLE: case M_CAPITALIZE:
        bind(I, A, name, p_none, 0, p);
        return str_case(I, self, m == M_LOWER ? 0 : m == M_UPPER ? 1 : m == M_CAPITALIZE ? 2 : 3);
    case M_FIND: case M_RFIND: case M_INDEX: case M_COUNT: {
        bind(I, A, name, p_find, 3, p);
        val sub = need_str(I, p[0], "substring");
        if (given(p[1]) || given(p[2]))
            IFAIL(I, CHAT_TMPL_ERR_UNSUPPORTED, "%s(start, end) is not supported", name);
        if (m == M_COUNT) {
            if (sub.n == 0) return v_int((int64_t)utf8_count(self.u.s, self.n) + 1);
            int64_t c = 0;
            for (size_t b = 0;;) {
                const char *h = memmem(self.u.s + b, self.n - b, sub.u.s, sub.n);
                if (!h) break;
                c++;
                b = (size_t)(h - self.u.s) + sub.n;
            }
            return v_int(c);
        }
        int64_t at = -1;
        if (m == M_RFIND) {
            if (sub.n <= self.n)
                for (size_t i = self.n - sub.n + 1; i-- > 0;)
                    if (memcmp(self.u.s + i, sub.u.s, sub.n) == 0) { at = (int64_t)cp_index(self, i); break; }
        } else {
            const char *h = sub.n ? memmem(self.u.s, self.n, sub.u.s, sub.n) : self.u.s;
            if (h) at = (int64_t)cp_index(self, (size_t)(h - self.u.s));
        }
        if (at < 0 && m == M_INDEX) RFAIL(I, "substring not found");
        return v_int(at);
    }
    case M_JOIN:
        bind(I, A, name, p_one, 1, p);
        return str_join(I, self, p[0]);
    case M_FORMAT:
        return str_format(I, self, A);
    case M_ISDIGIT: case M_ISALPHA: case M_ISALNUM: case M_ISSPACE: case M_ISUPPER: case M_ISLOWER:
        bind(I, A, name, p_none, 0, p);
        return v_bool(str_pred(self, m));
    case M_GET: {
        bind(I, A, name, p_two, 2, p);
        if (!given(p[0])) RFAIL(I, "get expected at least 1 argument");
        int i = dict_find(I, self.u.d, p[0]);
        if (i >= 0) return self.u.d->v[i];
        return given(p[1]) ? p[1] : v_none();
    }
    case M_ITEMS: case M_KEYS: case M_VALUES: {
        bind(I, A, name, p_none, 0, p);
        const vdict *d = self.u.d;
        vlist *l = list_new(I, d->n);
        for (uint32_t i = 0; i < d->n; i++) {
            if (m == M_KEYS) l->v[i] = d->k[i];
            else if (m == M_VALUES) l->v[i] = d->v[i];
            else {
                vlist *t = list_new(I, 2);
                t->v[0] = d->k[i];
                t->v[1] = d->v[i];
                t->n = 2;
                l->v[i] = v_list(t, VF_TUPLE);
            }
        }
        l->n = d->n;
        val r = v_list(l, VF_VIEW);
        r.aux = (uint16_t)(m == M_ITEMS ? 1 : m == M_KEYS ? 2 : 3);
        return r;
    }
    case M_DPOP: {
        bind(I, A, name, p_two, 2, p);
        vdict *d = self.u.d;
        int i = dict_find(I, d, p[0]);
        if (i < 0) {
            if (given(p[1])) return p[1];
            RFAIL(I, "KeyError in dict.pop");
        }
        val r = d->v[i];
        memmove(d->k + i, d->k + i + 1, (d->n - (uint32_t)i - 1) * sizeof(val));
        memmove(d->v + i, d->v + i + 1, (d->n - (uint32_t)i - 1) * sizeof(val));
        d->n--;
        return r;
    }
    case M_UPDATE: {
        vdict *d = self.u.d;
        for (int a = 0; a < A->n; a++) {
            val x = A->a[a].v;
            if (A->a[a].kw) {
                val key = v_str(A->a[a].kw, A->a[a].kwn);
                dict_set(I, d, key, x);
                note_val(I, d, x);
            } else if (x.t == VT_DICT && !(x.fl & VF_NS)) {
                for (uint32_t i = 0; i < x.u.d->n; i++) {
                    dict_set(I, d, x.u.d->k[i], x.u.d->v[i]);
                    note_val(I, d, x.u.d->k[i]);
                    note_val(I, d, x.u.d->v[i]);
                }
            } else {
                RFAIL(I, "dict.update() needs a mapping");
            }
        }
        note_val(I, d, v_dict(d, 0));   /* its (possibly new) arrays */
        return v_none();
    }
    case M_SETDEFAULT: {
        bind(I, A, name, p_two, 2, p);
        vdict *d = self.u.d;
        int i = dict_find(I, d, p[0]);
        if (i >= 0) return d->v[i];
        val dv = given(p[1]) ? p[1] : v_none();
        dict_set(I, d, p[0], dv);
        note_val(I, d, p[0]);
        note_val(I, d, dv);
        note_val(I, d, v_dict(d, 0));
        return dv;
    }
    case M_LINDEX: case M_LCOUNT: {
        bind(I, A, name, p_one, 1, p);
        int64_t c = 0;
        for (uint32_t i = 0; i < self.u.l->n; i++)
            if (py_eq(I, self.u.l->v[i], p[0])) {
                if (m == M_LINDEX) return v_int(i);
                c++;
            }
        if (m == M_LINDEX) RFAIL(I, "value is not in list");
        return v_int(c);
    }
    case M_APPEND: case M_EXTEND: {
        bind(I, A, name, p_one, 1, p);
        vlist *l = self.u.l;
        if (m == M_APPEND) {
            list_push(I, l, p[0]);
            note_val(I, l, p[0]);
        } else {
            const val *items;
            uint32_t n;
            iterate(I, p[0], &items, &n);
            for (uint32_t i = 0; i < n; i++) { list_push(I, l, items[i]); note_val(I, l, items[i]); }
        }
        note_val(I, l, v_list(l, 0));   /* its (possibly new) array */
        return v_none();
    }
    case M_INSERT: {
        bind(I, A, name, p_two, 2, p);
        vlist *l = self.u.l;
        int64_t at = need_int(I, p[0], "index");
        if (at < 0) at += l->n;
        if (at < 0) at = 0;
        if (at > (int64_t)l->n) at = l->n;
        list_push(I, l, p[1]);
        memmove(l->v + at + 1, l->v + at, (l->n - 1 - (uint32_t)at) * sizeof(val));
        l->v[at] = p[1];
        note_val(I, l, p[1]);
        note_val(I, l, v_list(l, 0));
        return v_none();
    }
    case M_LPOP: case M_REMOVE: {
        bind(I, A, name, p_one, 1, p);
        vlist *l = self.u.l;
        int64_t at = -1;
        if (m == M_LPOP) {
            if (l->n == 0) RFAIL(I, "pop from empty list");
            at = given(p[0]) ? norm_index(need_int(I, p[0], "index"), l->n) : (int64_t)l->n - 1;
            if (at < 0) RFAIL(I, "pop index out of range");
        } else {
            for (uint32_t i = 0; i < l->n && at < 0; i++)
                if (py_eq(I, l->v[i], p[0])) at = i;
            if (at < 0) RFAIL(I, "list.remove(x): x not in list");
        }
        val r = l->v[at];
        memmove(l->v + at, l->v + at + 1, (l->n - (uint32_t)at - 1) * sizeof(val));
        l->n--;
        return m == M_LPOP ? r : v_none();
    }
    case M_CYCLE: {
        int np = 0;
        for (int a = 0; a < A->n; a++) if (!A->a[a].kw) np++;
        if (np == 0) RFAIL(I, "no items for cycling given");
        return A->a[self.u.lp->i % (uint32_t)np].v;
    }
    }
    RFAIL(I, "unknown method");
}

/* ======================================================================
 * Filters and tests
 * ====================================================================== */

static val soft_str(interp *I, val v) { return v.t == VT_STR ? v : to_str(I, v); }

static int64_t length_of(interp *I, val v)
{
    switch (v.t) {
    case VT_STR: return (int64_t)utf8_count(v.u.s, v.n);
    case VT_LIST: if (!(v.fl & VF_GEN)) return v.u.l->n; break;
    case VT_DICT: if (!(v.fl & VF_NS)) return v.u.d->n; break;
    case VT_UNDEF: return 0;
    default: break;
    }
    RFAIL(I, "object of type '%s' has no len()", type_name(v));
}

/* Jinja2's make_attrgetter: "a.b.0" -> item lookups in turn */
static val attr_path(interp *I, val item, val attr)
{
    if (is_intlike(attr)) return get_item(I, item, attr);
    if (attr.t != VT_STR) RFAIL(I, "attribute must be a string or an integer");
    const char *s = attr.u.s;
    size_t n = attr.n, b = 0;
    for (;;) {
        size_t e = b;
        while (e < n && s[e] != '.') e++;
        int digits = e > b;
        int64_t num = 0;
        for (size_t i = b; i < e; i++) {
            if (!is_digit(s[i]) || num > INT64_MAX / 10 - 10) { digits = 0; break; }
            num = num * 10 + (s[i] - '0');
        }
        item = get_item(I, item, digits ? v_int(num) : v_str(s + b, e - b));
        if (e >= n) return item;
        b = e + 1;
    }
}

static val ignore_case(interp *I, val v)
{
    return v.t == VT_STR ? str_case(I, v, 0) : v;
}

/* stable merge sort of idx[0..n) by keys (cmp reversed when rev) */
static void sort_idx(interp *I, uint32_t *idx, uint32_t *tmp, uint32_t n, const val *keys, int rev)
{
    if (n < 2) return;
    uint32_t h = n / 2;
    sort_idx(I, idx, tmp, h, keys, rev);
    sort_idx(I, idx + h, tmp, n - h, keys, rev);
    uint32_t i = 0, j = h, o = 0;
    while (i < h && j < n) {
        step(I);
        int c = py_cmp(I, keys[idx[j]], keys[idx[i]]);
        if (rev) c = -c;
        tmp[o++] = c < 0 ? idx[j++] : idx[i++];
    }
    while (i < h) tmp[o++] = idx[i++];
    while (j < n) tmp[o++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static val sorted_list(interp *I, const val *items, const val *keys, uint32_t n, int rev, int fl)
{
    uint32_t *idx = ialloc(I, (n ? n : 1) * sizeof(uint32_t) * 2, 4);
    for (uint32_t i = 0; i < n; i++) idx[i] = i;
    sort_idx(I, idx, idx + n, n, keys, rev);
    vlist *l = list_new(I, n);
    for (uint32_t i = 0; i < n; i++) l->v[i] = items[idx[i]];
    l->n = n;
    return v_list(l, fl);
}

static int test_apply(interp *I, int id, val v, const args *A);
static val filter_apply(interp *I, int id, const char *fname, val v, const args *A);

/* select/reject/selectattr/rejectattr: A = (attr?, testname?, test args...) */
static val select_filter(interp *I, val v, const args *A, int by_attr, int keep)
{
    const val *items = NULL;
    uint32_t n = 0;
    if (truthy(v)) iterate(I, v, &items, &n);   /* Jinja2: `if value:` first */
    int off = 0;
    val attr = v_absent();
    if (by_attr) {
        if (A->n < 1 || A->a[0].kw) RFAIL(I, "missing parameter for attribute name");
        attr = A->a[0].v;
        off = 1;
    }
    int tid = -1;
    args targs = {NULL, 0};
    if (n == 0) return v_list(list_new(I, 0), VF_GEN);   /* the test is looked up per item */
    if (A->n > off && !A->a[off].kw) {
        val tn = need_str(I, A->a[off].v, "test name");
        tid = lookup_name(test_names, TS_N, tn.u.s, tn.n);
        if (tid < 0) RFAIL(I, "no test named '%.*s'", (int)(tn.n > 40 ? 40 : tn.n), tn.u.s);
        targs.a = A->a + off + 1;
        targs.n = A->n - off - 1;
    } else if (A->n > off) {
        RFAIL(I, "select: unexpected keyword argument");
    }
    vlist *l = list_new(I, 0);
    for (uint32_t i = 0; i < n; i++) {
        step(I);
        val x = by_attr ? attr_path(I, items[i], attr) : items[i];
        int ok = tid >= 0 ? test_apply(I, tid, x, &targs) : truthy(x);
        if (ok == keep) list_push(I, l, items[i]);
    }
    return v_list(l, VF_GEN);
}

static val map_filter(interp *I, val v, const args *A)
{
    const val *items = NULL;
    uint32_t n = 0;
    if (truthy(v)) iterate(I, v, &items, &n);   /* Jinja2: `if value:` first */
    vlist *l = list_new(I, n);
    if (A->n >= 1 && A->a[0].kw && name_eq(A->a[0].kw, A->a[0].kwn, "attribute")) {
        val attr = A->a[0].v, dflt = v_none();
        for (int i = 1; i < A->n; i++) {
            if (A->a[i].kw && name_eq(A->a[i].kw, A->a[i].kwn, "default")) dflt = A->a[i].v;
            else RFAIL(I, "map: unexpected keyword argument");
        }
        for (uint32_t i = 0; i < n; i++) {
            step(I);
            val x = attr_path(I, items[i], attr);
            if (x.t == VT_UNDEF && dflt.t != VT_NONE) x = dflt;
            l->v[l->n++] = x;
        }
        return v_list(l, VF_GEN);
    }
    if (A->n < 1 || A->a[0].kw) RFAIL(I, "map requires a filter argument");
    if (n == 0) return v_list(l, VF_GEN);   /* the filter is looked up per item */
    val fn = need_str(I, A->a[0].v, "filter name");
    int fid = lookup_name(filter_names, F_N, fn.u.s, fn.n);
    if (fid < 0) RFAIL(I, "no filter named '%.*s'", (int)(fn.n > 40 ? 40 : fn.n), fn.u.s);
    args fa = {A->a + 1, A->n - 1};
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)(fn.n > 30 ? 30 : fn.n), fn.u.s);
    for (uint32_t i = 0; i < n; i++) {
        step(I);
        l->v[l->n++] = filter_apply(I, fid, name, items[i], &fa);
    }
    return v_list(l, VF_GEN);
}

/* Python float("...") */
static int parse_pyfloat(val s, double *out)
{
    char buf[128];
    size_t b = lstrip_ws(s.u.s, s.n), e = rstrip_ws(s.u.s, s.n), o = 0;
    if (e <= b || e - b >= sizeof buf) return 0;
    for (size_t i = b; i < e; i++) {
        char c = s.u.s[i];
        if (c == '_') {
            if (i == b || i + 1 >= e || !is_digit(s.u.s[i - 1]) || !is_digit(s.u.s[i + 1])) return 0;
            continue;
        }
        if (!(is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-' ||
              is_lower_ascii(c) || is_upper_ascii(c))) return 0;
        buf[o++] = c;
    }
    buf[o] = 0;
    const char *p = buf + (buf[0] == '+' || buf[0] == '-');
    char low[16];
    size_t k = 0;
    for (; p[k] && k < sizeof low - 1; k++) low[k] = (char)to_lower_ascii(p[k]);
    low[k] = 0;
    if (!strcmp(low, "inf") || !strcmp(low, "infinity") || !strcmp(low, "nan")) {
        *out = low[0] == 'n' ? NAN : (buf[0] == '-' ? -INFINITY : INFINITY);
        return 1;
    }
    for (const char *q = p; *q; q++)
        if (!(is_digit(*q) || *q == '.' || *q == 'e' || *q == 'E' || *q == '+' || *q == '-')) return 0;
    if (!is_digit(p[0]) && !(p[0] == '.' && is_digit(p[1]))) return 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0;
}

/* Python int("...", base) for base 10 (and 2/8/16 with or without prefix) */
static int parse_pyint(val s, int base, int64_t *out)
{
    size_t b = lstrip_ws(s.u.s, s.n), e = rstrip_ws(s.u.s, s.n);
    if (e <= b) return 0;
    int neg = 0;
    if (s.u.s[b] == '+' || s.u.s[b] == '-') neg = s.u.s[b++] == '-';
    if (base != 10 && e - b > 2 && s.u.s[b] == '0') {
        char x = (char)to_lower_ascii(s.u.s[b + 1]);
        if ((base == 16 && x == 'x') || (base == 8 && x == 'o') || (base == 2 && x == 'b')) b += 2;
    }
    if (b >= e) return 0;
    uint64_t v = 0;
    for (size_t i = b; i < e; i++) {
        char c = s.u.s[i];
        if (c == '_' && i > b && i + 1 < e && s.u.s[i + 1] != '_') continue;
        int d = is_digit(c) ? c - '0' : is_lower_ascii(c) ? c - 'a' + 10 : is_upper_ascii(c) ? c - 'A' + 10 : 99;
        if (d >= base) return 0;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base) return 0;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    if (v > (uint64_t)INT64_MAX + (uint64_t)neg) return 0;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

static val indent_filter(interp *I, val s, val width, val first, val blank)
{
    if (s.t != VT_STR) RFAIL(I, "indent: can only concatenate str");
    val ind;
    if (!given(width)) ind = v_str("    ", 4);
    else if (width.t == VT_STR) ind = width;
    else {
        int64_t w = need_int(I, width, "width");
        if (w < 0) w = 0;
        if (w > 4096) RFAIL(I, "indent width too large");
        char *p = ialloc(I, (size_t)w + 1, 1);
        memset(p, ' ', (size_t)w);
        ind = v_str(p, (size_t)w);
    }
    /* lines of s + "\n" (the Jinja2 quirk) */
    sink k = sink_arena(I);
    int fst = given(first) && truthy(first), blk = given(blank) && truthy(blank);
    if (fst) sink_put(I, &k, ind.u.s, ind.n);
    size_t b = 0, i = 0, line_no = 0;
    size_t n = s.n;
    for (;;) {
        /* find the end of the current line in s, or the end of s */
        size_t e = n, next = n + 1, len;
        for (i = b; i < n; i += len) {
            uint32_t c = utf8_dec(s.u.s, n, i, &len);
            if (py_linebreak(c)) {
                e = i;
                next = i + len;
                if (c == '\r' && next < n && s.u.s[next] == '\n') next++;
                break;
            }
        }
        if (line_no > 0) {
            sink_putc(I, &k, '\n');
            if (blk || e > b) sink_put(I, &k, ind.u.s, ind.n);
        }
        sink_put(I, &k, s.u.s + b, e - b);
        line_no++;
        step(I);
        if (next > n) break;   /* no break left: the appended "\n" closes this line */
        b = next;
    }
    val r = sink_val(I, &k);
    r.fl = s.fl & VF_MARKUP;
    return r;
}

static val tojson_filter(interp *I, val v, const args *A)
{
    static const char *const pn[] = {"ensure_ascii", "indent", "separators", "sort_keys"};
    val p[4];
    bind(I, A, "tojson", pn, 4, p);
    jsonopt o;
    memset(&o, 0, sizeof o);
    o.ensure_ascii = given(p[0]) && truthy(p[0]);
    o.sort_keys = given(p[3]) && truthy(p[3]);
    if (given(p[1]) && p[1].t != VT_NONE) {
        if (p[1].t == VT_STR) {
            o.indent = p[1].u.s;
            o.indent_len = p[1].n;
        } else {
            int64_t w = need_int(I, p[1], "indent");
            if (w < 0) w = 0;
            if (w > 256) RFAIL(I, "tojson indent too large");
            char *sp = ialloc(I, (size_t)w + 1, 1);
            memset(sp, ' ', (size_t)w);
            o.indent = sp;
            o.indent_len = (size_t)w;
        }
    }
    o.item_sep = o.indent ? v_str(",", 1) : v_str(", ", 2);
    o.key_sep = v_str(": ", 2);
    if (given(p[2]) && p[2].t != VT_NONE) {
        val sp = p[2];
        if (sp.t != VT_LIST || sp.u.l->n != 2 || sp.u.l->v[0].t != VT_STR || sp.u.l->v[1].t != VT_STR)
            RFAIL(I, "tojson separators must be a pair of strings");
        o.item_sep = sp.u.l->v[0];
        o.key_sep = sp.u.l->v[1];
    }
    sink k = sink_arena(I);
    write_json(I, &k, v, &o, 0);
    return sink_val(I, &k);
}

static val round_filter(interp *I, val v, val prec, val method)
{
    int64_t p = given(prec) ? need_int(I, prec, "precision") : 0;
    if (v.t == VT_UNDEF) fail_undefined(I, v);
    if (!is_num(v)) RFAIL(I, "round: expected a number, not %s", type_name(v));
    const char *m = "common";
    if (given(method)) {
        val ms = need_str(I, method, "method");
        if (name_eq(ms.u.s, ms.n, "ceil")) m = "ceil";
        else if (name_eq(ms.u.s, ms.n, "floor")) m = "floor";
        else if (!name_eq(ms.u.s, ms.n, "common")) RFAIL(I, "method must be common, ceil or floor");
    }
    if (p > 300) p = 300;
    if (p < -300) p = -300;
    if (m[0] == 'c' && m[1] == 'o') {
        if (v.t != VT_FLOAT) return p >= 0 ? v_int(v.u.i) : v_float(round((double)v.u.i / pow(10, (double)-p)) * pow(10, (double)-p));
        double x = v.u.f;
        if (!isfinite(x)) return v;
        if (p >= 0) {
            char buf[400];
            snprintf(buf, sizeof buf, "%.*f", (int)(p > 60 ? 60 : p), x);   /* correctly rounded, half even */
            return v_float(strtod(buf, NULL));
        }
        double f = pow(10, (double)-p), q = x / f, r = nearbyint(q);
        return v_float(r * f);
    }
    double f = pow(10, (double)p), x = num_f(v) * f;
    return v_float((m[0] == 'c' ? ceil(x) : floor(x)) / f);
}

/* Jinja2's title filter: capitalize every word, words split at runs of
 * whitespace and -({[< */
static val title_filter(interp *I, val s)
{
    char *p = ialloc(I, s.n ? s.n : 1, 1);
    int word_start = 1;
    for (size_t i = 0; i < s.n; i++) {
        int c = (unsigned char)s.u.s[i];
        int sep = c == ' ' || (c >= 9 && c <= 13) || c == '-' || c == '(' || c == '{' || c == '[' || c == '<';
        if (sep) { p[i] = (char)c; word_start = 1; continue; }
        p[i] = (char)(word_start ? to_upper_ascii(c) : to_lower_ascii(c));
        word_start = 0;
    }
    val r = v_str(p, s.n);
    r.fl = s.fl & VF_MARKUP;
    return r;
}

static val filter_apply(interp *I, int id, const char *fname, val v, const args *A)
{
    val p[4];
    step(I);
    switch (id) {
    case F_ABS:
        bind(I, A, fname, NULL, 0, p);
        if (v.t == VT_FLOAT) return v_float(fabs(v.u.f));
        if (is_intlike(v)) {
            if (v.u.i == INT64_MIN) RFAIL(I, "integer overflow");
            return v_int(v.u.i < 0 ? -v.u.i : v.u.i);
        }
        if (v.t == VT_UNDEF) fail_undefined(I, v);
        RFAIL(I, "bad operand type for abs(): '%s'", type_name(v));
    case F_ATTR: {
        static const char *const pn[] = {"name"};
        bind(I, A, fname, pn, 1, p);
        val nm = need_str(I, p[0], "attribute name");
        if (v.t == VT_UNDEF) fail_undefined(I, v);
        if (v.t == VT_LOOP) return loop_attr(I, v.u.lp, nm.u.s, nm.n);
        int m = find_method(I, v, nm.u.s, nm.n);
        if (m != M_NONE) return bound_new(I, v, m);
        if (v.t == VT_DICT && (v.fl & VF_NS)) {
            int i = dict_find_str(v.u.d, nm.u.s, nm.n);
            if (i >= 0) return v.u.d->v[i];
        }
        return v_undef(nm.u.s, nm.n);
    }
    case F_CAPITALIZE:
        bind(I, A, fname, NULL, 0, p);
        return str_case(I, soft_str(I, v), 2);
    case F_COUNT: case F_LENGTH:
        bind(I, A, fname, NULL, 0, p);
        return v_int(length_of(I, v));
    case F_D: case F_DEFAULT: {
        static const char *const pn[] = {"default_value", "boolean"};
        bind(I, A, fname, pn, 2, p);
        int use = v.t == VT_UNDEF || (given(p[1]) && truthy(p[1]) && !truthy(v));
        if (!use) return v;
        return given(p[0]) ? p[0] : v_str("", 0);
    }
    case F_DICTSORT: {
        static const char *const pn[] = {"case_sensitive", "by", "reverse"};
        bind(I, A, fname, pn, 3, p);
        if (v.t == VT_UNDEF) fail_undefined(I, v);
        if (v.t != VT_DICT || (v.fl & VF_NS)) RFAIL(I, "dictsort: '%s' object has no attribute 'items'", type_name(v));
        int by_value = 0;
        if (given(p[1])) {
            val by = need_str(I, p[1], "by");
            if (name_eq(by.u.s, by.n, "value")) by_value = 1;
            else if (!name_eq(by.u.s, by.n, "key")) RFAIL(I, "you can only sort by either \"key\" or \"value\"");
        }
        int cs = given(p[0]) && truthy(p[0]);
        const vdict *d = v.u.d;
        val *items = ialloc(I, (d->n ? d->n : 1) * sizeof(val), 8), *keys = ialloc(I, (d->n ? d->n : 1) * sizeof(val), 8);
        for (uint32_t i = 0; i < d->n; i++) {
            vlist *t = list_new(I, 2);
            t->v[0] = d->k[i];
            t->v[1] = d->v[i];
            t->n = 2;
            items[i] = v_list(t, VF_TUPLE);
            keys[i] = by_value ? d->v[i] : d->k[i];
            if (!cs) keys[i] = ignore_case(I, keys[i]);
        }
        return sorted_list(I, items, keys, d->n, given(p[2]) && truthy(p[2]), 0);
    }
    case F_E: case F_ESCAPE:
        bind(I, A, fname, NULL, 0, p);
        return markup_of(I, v);
    case F_FIRST: case F_LAST: {
        bind(I, A, fname, NULL, 0, p);
        if (id == F_LAST && v.t == VT_LIST && (v.fl & VF_GEN)) RFAIL(I, "'generator' object is not reversible");
        if (id == F_FIRST && v.t == VT_LIST && (v.fl & VF_GEN)) {   /* next(): one item */
            vlist *l = v.u.l;
            return l->pos < l->n ? l->v[l->pos++] : v_undef(NULL, 0);
        }
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        if (n == 0) return v_undef(NULL, 0);
        return items[id == F_FIRST ? 0 : n - 1];
    }
    case F_FLOAT: {
        static const char *const pn[] = {"default"};
        bind(I, A, fname, pn, 1, p);
        val dflt = given(p[0]) ? p[0] : v_float(0.0);
        double d;
        if (v.t == VT_UNDEF) fail_undefined(I, v);
        if (is_num(v)) return v_float(num_f(v));
        if (v.t == VT_STR && parse_pyfloat(v, &d)) return v_float(d);
        return dflt;
    }
    case F_INT: {
        static const char *const pn[] = {"default", "base"};
        bind(I, A, fname, pn, 2, p);
        val dflt = given(p[0]) ? p[0] : v_int(0);
        int base = given(p[1]) ? (int)need_int(I, p[1], "base") : 10;
        if (base < 2 || base > 36) base = 10;
        if (v.t == VT_UNDEF) fail_undefined(I, v);
        if (is_intlike(v)) return v_int(v.u.i);
        double d = 0;
        int64_t x;
        if (v.t == VT_STR && parse_pyint(v, base, &x)) return v_int(x);
        if (v.t == VT_FLOAT) d = v.u.f;
        else if (!(v.t == VT_STR && parse_pyfloat(v, &d))) return dflt;
        if (isnan(d) || isinf(d)) RFAIL(I, "cannot convert float infinity or NaN to integer");
        if (d >= 9.2233720368547758e18 || d < -9.2233720368547758e18) RFAIL(I, "integer overflow");
        return v_int((int64_t)d);
    }
    case F_FORMAT: {
        int np = 0, nk = 0;
        for (int i = 0; i < A->n; i++) { if (A->a[i].kw) nk++; else np++; }
        if (np && nk) RFAIL(I, "can't handle positional and keyword arguments at the same time");
        val f = soft_str(I, v);
        if (nk) {
            vdict *d = dict_new(I, (size_t)nk);
            for (int i = 0; i < A->n; i++) dict_set(I, d, v_str(A->a[i].kw, A->a[i].kwn), A->a[i].v);
            return py_percent(I, f, NULL, 0, d, 0);
        }
        val *pv = ialloc(I, (size_t)(np ? np : 1) * sizeof(val), 8);
        for (int i = 0; i < np; i++) pv[i] = A->a[i].v;
        return py_percent(I, f, pv, (uint32_t)np, NULL, 0);
    }
    case F_INDENT: {
        static const char *const pn[] = {"width", "first", "blank"};
        bind(I, A, fname, pn, 3, p);
        return indent_filter(I, v, p[0], p[1], p[2]);
    }
    case F_ITEMS: {
        bind(I, A, fname, NULL, 0, p);
        if (v.t == VT_UNDEF) return v_list(list_new(I, 0), VF_GEN);
        if (v.t != VT_DICT || (v.fl & VF_NS)) RFAIL(I, "can only get item pairs from a mapping");
        vlist *l = list_new(I, v.u.d->n);
        for (uint32_t i = 0; i < v.u.d->n; i++) {
            vlist *t = list_new(I, 2);
            t->v[0] = v.u.d->k[i];
            t->v[1] = v.u.d->v[i];
            t->n = 2;
            l->v[l->n++] = v_list(t, VF_TUPLE);
        }
        return v_list(l, VF_GEN);
    }
    case F_JOIN: {
        static const char *const pn[] = {"d", "attribute"};
        bind(I, A, fname, pn, 2, p);
        val sep = given(p[0]) ? to_str(I, p[0]) : v_str("", 0);
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        sink k = sink_arena(I);
        for (uint32_t i = 0; i < n; i++) {
            step(I);
            if (i) sink_put(I, &k, sep.u.s, sep.n);
            write_str(I, &k, given(p[1]) && p[1].t != VT_NONE ? attr_path(I, items[i], p[1]) : items[i]);
        }
        return sink_val(I, &k);
    }
    case F_LIST: {
        bind(I, A, fname, NULL, 0, p);
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        vlist *l = list_new(I, n);
        if (n) memcpy(l->v, items, n * sizeof(val));
        l->n = n;
        return v_list(l, 0);
    }
    case F_LOWER: case F_UPPER:
        bind(I, A, fname, NULL, 0, p);
        return str_case(I, soft_str(I, v), id == F_UPPER);
    case F_MAP:
        return map_filter(I, v, A);
    case F_MAX: case F_MIN: {
        static const char *const pn[] = {"case_sensitive", "attribute"};
        bind(I, A, fname, pn, 2, p);
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        if (n == 0) return v_undef(NULL, 0);
        int cs = given(p[0]) && truthy(p[0]);
        uint32_t best = 0;
        val bk = v_none();
        for (uint32_t i = 0; i < n; i++) {
            step(I);
            val key = given(p[1]) && p[1].t != VT_NONE ? attr_path(I, items[i], p[1]) : items[i];
            if (!cs) key = ignore_case(I, key);
            if (i == 0) { bk = key; continue; }
            int c = py_cmp(I, key, bk);
            if (id == F_MAX ? c > 0 : c < 0) { best = i; bk = key; }
        }
        return items[best];
    }
    case F_REJECT: case F_SELECT:
        return select_filter(I, v, A, 0, id == F_SELECT);
    case F_REJECTATTR: case F_SELECTATTR:
        return select_filter(I, v, A, 1, id == F_SELECTATTR);
    case F_REPLACE: {
        static const char *const pn[] = {"old", "new", "count"};
        bind(I, A, fname, pn, 3, p);
        if (!given(p[0]) || !given(p[1])) RFAIL(I, "replace() needs old and new");
        val s = to_str(I, v);
        s.fl = 0;
        return str_replace(I, s, to_str(I, p[0]), to_str(I, p[1]),
                           given(p[2]) && p[2].t != VT_NONE ? need_int(I, p[2], "count") : -1);
    }
    case F_REVERSE: {
        bind(I, A, fname, NULL, 0, p);
        if (v.t == VT_STR) return do_slice(I, v, v_none(), v_none(), v_int(-1));
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        vlist *l = list_new(I, n);
        for (uint32_t i = 0; i < n; i++) l->v[i] = items[n - 1 - i];
        l->n = n;
        return v_list(l, (v.t == VT_LIST && (v.fl & VF_GEN)) ? 0 : VF_GEN);
    }
    case F_ROUND: {
        static const char *const pn[] = {"precision", "method"};
        bind(I, A, fname, pn, 2, p);
        return round_filter(I, v, p[0], p[1]);
    }
    case F_SAFE: {
        bind(I, A, fname, NULL, 0, p);
        val s = to_str(I, v);
        s.fl = VF_MARKUP;
        return s;
    }
    case F_SORT: {
        static const char *const pn[] = {"reverse", "case_sensitive", "attribute"};
        bind(I, A, fname, pn, 3, p);
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        int cs = given(p[1]) && truthy(p[1]);
        val *keys = ialloc(I, (n ? n : 1) * sizeof(val), 8);
        for (uint32_t i = 0; i < n; i++) {
            keys[i] = given(p[2]) && p[2].t != VT_NONE ? attr_path(I, items[i], p[2]) : items[i];
            if (!cs) keys[i] = ignore_case(I, keys[i]);
        }
        return sorted_list(I, items, keys, n, given(p[0]) && truthy(p[0]), 0);
    }
    case F_STRING:
        bind(I, A, fname, NULL, 0, p);
        return soft_str(I, v);
    case F_SUM: {
        static const char *const pn[] = {"attribute", "start"};
        bind(I, A, fname, pn, 2, p);
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        val acc = given(p[1]) ? p[1] : v_int(0);
        for (uint32_t i = 0; i < n; i++) {
            step(I);
            acc = binop(I, OP_ADD, acc, given(p[0]) && p[0].t != VT_NONE ? attr_path(I, items[i], p[0]) : items[i]);
        }
        return acc;
    }
    case F_TITLE:
        bind(I, A, fname, NULL, 0, p);
        return title_filter(I, soft_str(I, v));
    case F_TOJSON:
        return tojson_filter(I, v, A);
    case F_TRIM: {
        static const char *const pn[] = {"chars"};
        bind(I, A, fname, pn, 1, p);
        return str_strip(I, soft_str(I, v), p[0], 1, 1);
    }
    case F_UNIQUE: {
        static const char *const pn[] = {"case_sensitive", "attribute"};
        bind(I, A, fname, pn, 2, p);
        const val *items;
        uint32_t n;
        iterate(I, v, &items, &n);
        int cs = given(p[0]) && truthy(p[0]);
        vlist *l = list_new(I, 0), *seen = list_new(I, 0);
        for (uint32_t i = 0; i < n; i++) {
            val key = given(p[1]) && p[1].t != VT_NONE ? attr_path(I, items[i], p[1]) : items[i];
            if (!cs) key = ignore_case(I, key);
            if (key.t == VT_LIST && !(key.fl & VF_TUPLE)) RFAIL(I, "unhashable type: 'list'");
            if (key.t == VT_DICT) RFAIL(I, "unhashable type: 'dict'");
            int dup = 0;
            for (uint32_t j = 0; j < seen->n && !dup; j++) { step(I); dup = py_eq(I, seen->v[j], key); }
            if (dup) continue;
            list_push(I, seen, key);
            list_push(I, l, items[i]);
        }
        return v_list(l, VF_GEN);
    }
    case F_WORDCOUNT: {
        bind(I, A, fname, NULL, 0, p);
        val s = soft_str(I, v);
        int64_t words = 0;
        int in_word = 0;
        for (size_t i = 0; i < s.n; i++) {
            int c = (unsigned char)s.u.s[i];
            int w = is_name_char(c) || c >= 0x80;
            if (w && !in_word) words++;
            in_word = w;
        }
        return v_int(words);
    }
    default:
        if (id >= 0 && id < F_N)
            IFAIL(I, CHAT_TMPL_ERR_UNSUPPORTED, "the %s filter is not supported", filter_names[id]);
        RFAIL(I, "no filter named '%s'", fname);
    }
}

static int test_apply(interp *I, int id, val v, const args *A)
{
    val p[1] = {v_absent()};
    static const char *const pn[] = {"other"};
    if (id == TS_DEFINED) return v.t != VT_UNDEF;
    if (id == TS_UNDEFINED) return v.t == VT_UNDEF;
    bind(I, A, test_names[id], pn, (id == TS_DIVISIBLEBY || id == TS_EQ || id == TS_EQUALTO || id == TS_GE ||
                                    id == TS_GREATERTHAN || id == TS_GT || id == TS_IN || id == TS_LE ||
                                    id == TS_LESSTHAN || id == TS_LT || id == TS_NE || id == TS_SAMEAS ||
                                    id >= TS_OP_EQ) ? 1 : 0, p);
    if (p[0].t == VT_ABSENT && (id == TS_DIVISIBLEBY || id == TS_EQ || id == TS_EQUALTO || id == TS_GE ||
                                id == TS_GREATERTHAN || id == TS_GT || id == TS_IN || id == TS_LE ||
                                id == TS_LESSTHAN || id == TS_LT || id == TS_NE || id == TS_SAMEAS || id >= TS_OP_EQ))
        RFAIL(I, "test '%s' is missing its argument", test_names[id]);
    switch (id) {
    case TS_BOOLEAN: return v.t == VT_BOOL;
    case TS_CALLABLE: return v.t == VT_MACRO || v.t == VT_FUNC || v.t == VT_BOUND;
    case TS_DIVISIBLEBY: {
        val r = binop(I, OP_MOD, v, given(p[0]) ? p[0] : v_undef("num", 3));
        return !truthy(r);
    }
    case TS_EQ: case TS_EQUALTO: case TS_OP_EQ: return py_eq(I, v, p[0]);
    case TS_NE: case TS_OP_NE: return !py_eq(I, v, p[0]);
    case TS_LT: case TS_LESSTHAN: case TS_OP_LT: return py_cmp(I, v, p[0]) < 0;
    case TS_LE: case TS_OP_LE: return py_cmp(I, v, p[0]) <= 0;
    case TS_GT: case TS_GREATERTHAN: case TS_OP_GT: return py_cmp(I, v, p[0]) > 0;
    case TS_GE: case TS_OP_GE: return py_cmp(I, v, p[0]) >= 0;
    case TS_ESCAPED: return v.t == VT_STR && (v.fl & VF_MARKUP);
    case TS_EVEN: case TS_ODD: {
        val r = binop(I, OP_MOD, v, v_int(2));
        return truthy(r) == (id == TS_ODD);
    }
    case TS_FALSE: return v.t == VT_BOOL && !v.u.i;
    case TS_TRUE: return v.t == VT_BOOL && v.u.i;
    case TS_FILTER: return v.t == VT_STR && lookup_name(filter_names, F_N_IMPL, v.u.s, v.n) >= 0;
    case TS_TEST: return v.t == VT_STR && lookup_name(test_names, TS_N, v.u.s, v.n) >= 0;
    case TS_FLOAT: return v.t == VT_FLOAT;
    case TS_INTEGER: return v.t == VT_INT;
    case TS_NUMBER: return is_num(v);
    case TS_IN: return contains(I, p[0], v);
    case TS_ITERABLE:
        return v.t == VT_STR || v.t == VT_LIST || (v.t == VT_DICT && !(v.fl & VF_NS)) || v.t == VT_UNDEF;
    case TS_SEQUENCE:
        return v.t == VT_STR || (v.t == VT_LIST && !(v.fl & (VF_GEN | VF_VIEW))) ||
               (v.t == VT_DICT && !(v.fl & VF_NS)) || v.t == VT_UNDEF;
    case TS_MAPPING: return v.t == VT_DICT && !(v.fl & VF_NS);
    case TS_STRING: return v.t == VT_STR;
    case TS_NONE: return v.t == VT_NONE;
    case TS_LOWER: case TS_UPPER: {
        val s = to_str(I, v);
        return str_pred(s, id == TS_LOWER ? M_ISLOWER : M_ISUPPER);
    }
    case TS_SAMEAS: {
        val o = p[0];
        if (v.t != o.t) return 0;
        switch (v.t) {
        case VT_NONE: case VT_UNDEF: return v.t == VT_NONE;
        case VT_BOOL: case VT_INT: return v.u.i == o.u.i;
        case VT_FLOAT: return 0;
        case VT_STR: return v.u.s == o.u.s && v.n == o.n;
        case VT_LIST: return v.u.l == o.u.l;
        case VT_DICT: return v.u.d == o.u.d;
        default: return py_eq(I, v, o);
        }
    }
    }
    RFAIL(I, "unknown test");
}

/* ======================================================================
 * Globals and macro calls
 * ====================================================================== */

/* noinline: keeps its locals out of the recursive evaluator's frame */
__attribute__((noinline))
static val call_global(interp *I, int g, const args *A)
{
    step(I);
    switch (g) {
    case G_RANGE: {
        int64_t a[3];
        int np = 0;
        for (int i = 0; i < A->n; i++) {
            if (A->a[i].kw) RFAIL(I, "range() takes no keyword arguments");
            if (np == 3) RFAIL(I, "range expected at most 3 arguments");
            a[np++] = need_int(I, A->a[i].v, "range() argument");
        }
        if (np == 0) RFAIL(I, "range expected at least 1 argument");
        int64_t start = np > 1 ? a[0] : 0, stop = np > 1 ? a[1] : a[0], st = np > 2 ? a[2] : 1;
        if (st == 0) RFAIL(I, "range() arg 3 must not be zero");
        /* length without overflow */
        double count = st > 0 ? ceil(((double)stop - (double)start) / (double)st)
                              : ceil(((double)start - (double)stop) / (double)-st);
        if (count < 0) count = 0;
        if (count > CHAT_TMPL_RANGE_MAX)
            RFAIL(I, "range too big (the sandbox allows at most %d items)", CHAT_TMPL_RANGE_MAX);
        vlist *l = list_new(I, (size_t)count);
        for (int64_t x = start; st > 0 ? x < stop : x > stop; x += st) {
            l->v[l->n++] = v_int(x);
            if (l->n == l->cap) break;
        }
        return v_list(l, 0);
    }
    case G_NAMESPACE: case G_DICT: {
        vdict *d = dict_new(I, 0);
        for (int i = 0; i < A->n; i++) {
            const arg *x = &A->a[i];
            if (x->kw) {
                dict_set(I, d, v_str(x->kw, x->kwn), x->v);
            } else if (x->v.t == VT_DICT && !(x->v.fl & VF_NS)) {
                for (uint32_t j = 0; j < x->v.u.d->n; j++) dict_set(I, d, x->v.u.d->k[j], x->v.u.d->v[j]);
            } else {
                RFAIL(I, "%s() positional argument must be a mapping", g == G_DICT ? "dict" : "namespace");
            }
        }
        return v_dict(d, g == G_NAMESPACE ? VF_NS : 0);
    }
    case G_RAISE: {
        val msg = A->n > 0 ? to_str(I, A->a[0].v) : v_str("", 0);
        fail_at(&I->e, CHAT_TMPL_ERR_RAISED, 0, "%.*s", (int)(msg.n > 4000 ? 4000 : msg.n), msg.u.s);
    }
    case G_STRFTIME: {
        if (A->n != 1 || A->a[0].kw) RFAIL(I, "strftime_now() takes one argument");
        val f = need_str(I, A->a[0].v, "format");
        char fmt[256], out[512];
        if (f.n >= sizeof fmt) RFAIL(I, "strftime_now format too long");
        memcpy(fmt, f.u.s, f.n);
        fmt[f.n] = 0;
        time_t now = I->now ? I->now : time(NULL);
        struct tm tm;
        if (!localtime_r(&now, &tm)) RFAIL(I, "strftime_now: bad clock");
        size_t n = f.n ? strftime(out, sizeof out, fmt, &tm) : 0;
        return v_str(idup(I, out, n), n);
    }
    }
    RFAIL(I, "unknown function");
}

static void exec_body(interp *I, const node *x, int *ctl);
static val eval(interp *I, const node *x);

/* noinline: keeps its locals out of the recursive evaluator's frame */
__attribute__((noinline))
static val capture(interp *I, const node *body)
{
    sink k = sink_arena(I), *saved = I->out;
    frame *f = I->cur;
    I->out = &k;
    frame_push(I);
    int ctl = 0;
    exec_body(I, body, &ctl);
    I->cur = f;
    I->out = saved;
    return sink_val(I, &k);
}

/* noinline: keeps its locals out of the recursive evaluator's frame */
__attribute__((noinline))
static val call_macro(interp *I, const macro *m, const args *A)
{
    const node *def = m->def;
    deeper(I);
    step(I);
    frame *saved = I->cur;
    I->cur = m->closure;
    frame *f = frame_push(I);
    /* bind arguments */
    int np = 0;
    for (const node *p = def->kids; p; p = p->next) np++;
    int pos = 0;
    for (int i = 0; i < A->n; i++) {
        const arg *x = &A->a[i];
        const node *p = def->kids;
        if (!x->kw) {
            if (pos >= np)
                RFAIL(I, "macro '%.*s' takes not more than %d argument(s)", (int)(def->n > 40 ? 40 : def->n), def->s, np);
            for (int k = 0; k < pos; k++) p = p->next;
            pos++;
        } else {
            while (p && !(p->n == x->kwn && memcmp(p->s, x->kw, p->n) == 0)) p = p->next;
            if (!p)
                RFAIL(I, "macro '%.*s' takes no keyword argument '%.*s'", (int)(def->n > 40 ? 40 : def->n), def->s,
                      (int)(x->kwn > 40 ? 40 : x->kwn), x->kw);
        }
        frame_set(I, f, p->s, p->n, x->v);
    }
    for (const node *p = def->kids; p; p = p->next) {
        int have = 0;
        for (var *v = f->vars; v && !have; v = v->next) have = v->n == p->n && memcmp(v->name, p->s, p->n) == 0;
        if (have) continue;
        frame_set(I, f, p->s, p->n, p->a ? eval(I, p->a) : v_undef(p->s, p->n));
    }
    sink k = sink_arena(I), *so = I->out;
    I->out = &k;
    int ctl = 0;
    exec_body(I, def->b, &ctl);
    I->out = so;
    I->cur = saved;
    shallower(I);
    return sink_val(I, &k);
}

static val call_value(interp *I, val f, const args *A)
{
    switch (f.t) {
    case VT_MACRO: return call_macro(I, f.u.m, A);
    case VT_FUNC: return call_global(I, (int)f.u.i, A);
    case VT_BOUND: return call_method(I, f.u.b->self, f.u.b->method, A);
    case VT_UNDEF: fail_undefined(I, f);
    default: RFAIL(I, "'%s' object is not callable", type_name(f));
    }
}

/* ======================================================================
 * Expressions
 * ====================================================================== */

static val lookup(interp *I, const char *s, size_t n)
{
    var *x = frame_find(I->cur, s, n);
    if (x) return x->v;
    for (int g = 0; g < G_N; g++)
        if (name_eq(s, n, func_names[g])) {
            val v = {0};
            v.t = VT_FUNC;
            v.u.i = g;
            return v;
        }
    return v_undef(s, n);
}

/* Evaluate call arguments onto the argument stack; pop with I->vsp = base */
static args eval_args(interp *I, const node *list)
{
    int base = I->vsp, count = 0;
    for (const node *p = list; p; p = p->next) count++;
    if (count > I->vscap - I->vsp) IFAIL(I, CHAT_TMPL_ERR_LIMIT, "too many nested call arguments");
    I->vsp += count;
    int i = base;
    for (const node *p = list; p; p = p->next, i++) {
        arg *a = &I->vs[i];
        if (p->kind == N_KWARG) {
            a->kw = p->s;
            a->kwn = p->n;
            a->v = eval(I, p->a);
        } else {
            a->kw = NULL;
            a->kwn = 0;
            a->v = eval(I, p);
        }
    }
    args A = {I->vs + base, count};
    return A;
}

/* noinline: keeps its locals out of the recursive evaluator's frame */
__attribute__((noinline))
static val apply_filter_node(interp *I, const node *x, val base)
{
    val v = x->a ? eval(I, x->a) : base;
    int line = I->line;
    I->line = (int)x->line;
    if (x->id < 0)
        RFAIL(I, "no filter named '%.*s' found", (int)(x->n > 40 ? 40 : x->n), x->s);
    int sp = I->vsp;
    args A = eval_args(I, x->kids);
    char name[32];
    snprintf(name, sizeof name, "%s", filter_names[x->id]);
    val r = filter_apply(I, x->id, name, v, &A);
    I->vsp = sp;
    I->line = line;
    return r;
}

/* filter chain of a filter block / set block: innermost operand = base */
static val apply_chain(interp *I, const node *x, val base)
{
    if (!x) return base;
    val v = apply_chain(I, x->a, base);
    node tmp = *x;
    tmp.a = NULL;
    return apply_filter_node(I, &tmp, v);
}

static val eval(interp *I, const node *x)
{
    val r;
    step(I);
    deeper(I);
    I->line = (int)x->line;
    switch (x->kind) {
    case N_CONST: r = x->v; break;
    case N_NAME: r = lookup(I, x->s, x->n); break;
    case N_GETATTR: r = get_attr(I, eval(I, x->a), x->s, x->n); break;
    case N_GETITEM: {
        val o = eval(I, x->a);
        r = get_item(I, o, eval(I, x->b));
        break;
    }
    case N_SLICE: {
        if (!x->a) RFAIL(I, "internal: slice without operand");
        val o = eval(I, x->a);
        val b = x->b ? eval(I, x->b) : v_none();
        val c = x->c ? eval(I, x->c) : v_none();
        val d = x->d ? eval(I, x->d) : v_none();
        r = do_slice(I, o, b, c, d);
        break;
    }
    case N_CALL: {
        int sp = I->vsp;
        val f;
        if (x->a->kind == N_GETATTR) {
            val obj = eval(I, x->a->a);
            int m = obj.t == VT_UNDEF ? M_NONE : find_method(I, obj, x->a->s, x->a->n);
            if (m != M_NONE) {
                args A = eval_args(I, x->kids);
                I->line = (int)x->line;
                r = call_method(I, obj, m, &A);
                I->vsp = sp;
                break;
            }
            f = get_attr(I, obj, x->a->s, x->a->n);
        } else {
            f = eval(I, x->a);
        }
        args A = eval_args(I, x->kids);
        I->line = (int)x->line;
        r = call_value(I, f, &A);
        I->vsp = sp;
        break;
    }
    case N_FILTER: r = apply_filter_node(I, x, v_none()); break;
    case N_TEST: {
        val v = eval(I, x->a);
        I->line = (int)x->line;
        if (x->id < 0) RFAIL(I, "no test named '%.*s' found", (int)(x->n > 40 ? 40 : x->n), x->s);
        int sp = I->vsp;
        args A = eval_args(I, x->kids);
        r = v_bool(test_apply(I, x->id, v, &A));
        I->vsp = sp;
        break;
    }
    case N_NOT: r = v_bool(!truthy(eval(I, x->a))); break;
    case N_NEG: case N_POS: {
        val v = eval(I, x->a);
        if (v.t == VT_UNDEF) fail_undefined(I, v);
        if (!is_num(v)) RFAIL(I, "bad operand type for unary %c: '%s'", x->kind == N_NEG ? '-' : '+', type_name(v));
        if (x->kind == N_POS) r = v.t == VT_BOOL ? v_int(v.u.i) : v;
        else if (v.t == VT_FLOAT) r = v_float(-v.u.f);
        else if (v.u.i == INT64_MIN) RFAIL(I, "integer overflow");
        else r = v_int(-v.u.i);
        break;
    }
    case N_BIN: {
        val a = eval(I, x->a), b = eval(I, x->b);
        I->line = (int)x->line;
        r = binop(I, x->op, a, b);
        break;
    }
    case N_AND: r = eval(I, x->a); if (truthy(r)) r = eval(I, x->b); break;
    case N_OR: r = eval(I, x->a); if (!truthy(r)) r = eval(I, x->b); break;
    case N_CMP: {
        val l = eval(I, x->a);
        r = v_bool(1);
        for (const node *o = x->kids; o; o = o->next) {
            val rv = eval(I, o->a);
            I->line = (int)o->line;
            if (!compare_op(I, o->op, l, rv)) { r = v_bool(0); break; }
            l = rv;
        }
        break;
    }
    case N_CONCAT: {
        sink k = sink_arena(I);
        for (const node *p = x->kids; p; p = p->next) write_str(I, &k, eval(I, p));
        r = sink_val(I, &k);
        break;
    }
    case N_COND:
        if (truthy(eval(I, x->a))) r = eval(I, x->b);
        else r = x->c ? eval(I, x->c) : v_undef(NULL, 0);
        break;
    case N_LIST: case N_TUPLE: {
        uint32_t n = 0;
        for (const node *p = x->kids; p; p = p->next) n++;
        vlist *l = list_new(I, n);
        for (const node *p = x->kids; p; p = p->next) l->v[l->n++] = eval(I, p);
        r = v_list(l, x->kind == N_TUPLE ? VF_TUPLE : 0);
        break;
    }
    case N_DICT: {
        vdict *d = dict_new(I, 0);
        for (const node *p = x->kids; p; p = p->next) {
            val k = eval(I, p->a);
            if (k.t == VT_LIST && !(k.fl & VF_TUPLE)) RFAIL(I, "unhashable type: 'list'");
            if (k.t == VT_DICT) RFAIL(I, "unhashable type: 'dict'");
            dict_set(I, d, k, eval(I, p->b));
        }
        r = v_dict(d, 0);
        break;
    }
    default:
        RFAIL(I, "internal: bad expression node");
    }
    shallower(I);
    return r;
}

/* ======================================================================
 * Statements
 * ====================================================================== */

static void assign(interp *I, frame *f, const node *target, val v)
{
    if (target->kind == N_NAME) {
        frame_set(I, f, target->s, target->n, v);
        return;
    }
    if (target->kind == N_NSREF) {
        var *x = frame_find(I->cur, target->s, target->n);
        if (!x || x->v.t != VT_DICT || !(x->v.fl & VF_NS))
            RFAIL(I, "cannot assign attribute on non-namespace object");
        vdict *d = x->v.u.d;
        val key = v_str(target->s2, target->n2);
        dict_set(I, d, key, v);
        note_val(I, d, v);
        note_val(I, d, x->v);   /* its (possibly new) arrays */
        return;
    }
    /* tuple unpacking */
    uint32_t want = 0;
    for (const node *p = target->kids; p; p = p->next) want++;
    const val *items;
    uint32_t n;
    if (v.t == VT_UNDEF) fail_undefined(I, v);
    iterate(I, v, &items, &n);
    if (n != want)
        RFAIL(I, n < want ? "not enough values to unpack (expected %u, got %u)"
                          : "too many values to unpack (expected %u, got %u)", want, n);
    uint32_t i = 0;
    for (const node *p = target->kids; p; p = p->next) frame_set(I, f, p->s, p->n, items[i++]);
}

static void exec_for(interp *I, const node *x, int *ctl)
{
    val it = eval(I, x->b);
    const val *items;
    uint32_t n;
    uint32_t gen_start = (it.t == VT_LIST && (it.fl & VF_GEN)) ? it.u.l->pos : 0;
    iterate(I, it, &items, &n);
    if (x->c) {   /* `for a in b if cond`: filter first (loop.length counts kept items) */
        val *kept = ialloc(I, (n ? n : 1) * sizeof(val), 8);
        uint32_t k = 0;
        frame *saved = I->cur;
        for (uint32_t i = 0; i < n; i++) {
            step(I);
            int mark = mark_take(I);
            frame *f = frame_push(I);
            assign(I, f, x->a, items[i]);
            int keep = truthy(eval(I, x->c));
            I->cur = saved;
            mark_drop(I, mark);
            if (keep) kept[k++] = items[i];
        }
        items = kept;
        n = k;
    }
    if (n == 0) {
        if (x->kids) exec_body(I, x->kids, ctl);
        return;
    }
    loopst *L = ialloc(I, sizeof *L, 8);
    L->items = items;
    L->n = n;
    frame *saved = I->cur;
    for (uint32_t i = 0; i < n; i++) {
        step(I);
        L->i = i;
        int mark = mark_take(I);
        frame *f = frame_push(I);
        assign(I, f, x->a, items[i]);
        val lv = {0};
        lv.t = VT_LOOP;
        lv.u.lp = L;
        frame_set(I, f, "loop", 4, lv);
        int c = 0;
        exec_body(I, x->d, &c);
        I->cur = saved;
        mark_drop(I, mark);
        if (c == 1) {
            /* a generator is left positioned after the item we broke at */
            if (it.t == VT_LIST && (it.fl & VF_GEN) && !x->c) it.u.l->pos = gen_start + i + 1;
            break;
        }
    }
}

static void exec_body(interp *I, const node *x, int *ctl)
{
    deeper(I);
    for (; x; x = x->next) {
        step(I);
        I->line = (int)x->line;
        switch (x->kind) {
        case S_TEXT:
            sink_put(I, I->out, x->s, x->n);
            break;
        case S_PRINT: {
            int mark = mark_take(I);
            val v = eval(I, x->a);
            write_str(I, I->out, v);
            mark_drop(I, mark);
            break;
        }
        case S_IF:
            if (truthy(eval(I, x->a))) exec_body(I, x->b, ctl);
            else if (x->c) exec_body(I, x->c, ctl);
            break;
        case S_FOR:
            exec_for(I, x, ctl);
            break;
        case S_SET:
            assign(I, I->cur, x->a, eval(I, x->b));
            break;
        case S_SETBLOCK: {
            val v = capture(I, x->b);
            if (x->c) v = apply_chain(I, x->c, v);
            assign(I, I->cur, x->a, v);
            break;
        }
        case S_MACRO: {
            macro *m = ialloc(I, sizeof *m, 8);
            m->def = x;
            m->closure = I->cur;
            val v = {0};
            v.t = VT_MACRO;
            v.u.m = m;
            frame_set(I, I->cur, x->s, x->n, v);
            break;
        }
        case S_FILTERBLOCK: {
            val v = capture(I, x->b);
            write_str(I, I->out, apply_chain(I, x->a, v));
            break;
        }
        case S_BREAK: *ctl = 1; break;
        case S_CONTINUE: *ctl = 2; break;
        case S_BLOCK:
            exec_body(I, x->b, ctl);
            break;
        case S_WITH: {
            /* values are evaluated in the enclosing scope, then bound in a
             * new one */
            int count = 0;
            for (const node *k = x->kids; k; k = k->next) count++;
            val *vals = ialloc(I, (size_t)(count ? count : 1) * sizeof(val), 8);
            int i = 0;
            for (const node *k = x->kids; k; k = k->next) vals[i++] = eval(I, k->a);
            frame *saved = I->cur, *f = frame_push(I);
            i = 0;
            for (const node *k = x->kids; k; k = k->next) frame_set(I, f, k->s, k->n, vals[i++]);
            exec_body(I, x->b, ctl);
            I->cur = saved;
            break;
        }
        default:
            RFAIL(I, "internal: bad statement node");
        }
        if (*ctl) break;
    }
    shallower(I);
}

/* ======================================================================
 * Input: JSON texts -> template values
 * ====================================================================== */

static val json_val(interp *I, const char *js, const json_tok *t, int *i)
{
    const json_tok *k = &t[*i];
    switch (k->type) {
    case JSON_OBJECT: {
        int pairs = k->size;
        vdict *d = dict_new(I, (size_t)pairs);
        (*i)++;
        for (int p = 0; p < pairs; p++) {
            val key = json_val(I, js, t, i);
            val v = json_val(I, js, t, i);
            dict_set(I, d, key, v);   /* duplicate keys: last value, first position */
        }
        return v_dict(d, 0);
    }
    case JSON_ARRAY: {
        int n = k->size;
        vlist *l = list_new(I, (size_t)n);
        (*i)++;
        for (int e = 0; e < n; e++) l->v[l->n++] = json_val(I, js, t, i);
        return v_list(l, 0);
    }
    case JSON_STRING: {
        size_t raw = (size_t)(k->end - k->start);
        char *buf = ialloc(I, raw + 1, 1);
        int len = json_string_unescape(js, t, *i, buf, raw + 1);
        if (len < 0) IFAIL(I, CHAT_TMPL_ERR_INPUT, "bad JSON string");
        I->a.lo -= raw - (size_t)len;   /* give back what unescaping saved */
        (*i)++;
        return v_str(buf, (size_t)len);
    }
    case JSON_NUMBER: {
        int isf = 0;
        for (int p = k->start; p < k->end; p++)
            if (js[p] == '.' || js[p] == 'e' || js[p] == 'E') isf = 1;
        long long ll;
        double d;
        val r;
        if (!isf && json_get_int64(js, t, *i, &ll) == 0) r = v_int(ll);
        else if (json_get_double(js, t, *i, &d) == 0) r = v_float(d);
        else r = v_float(k->start < k->end && js[k->start] == '-' ? -INFINITY : INFINITY);
        (*i)++;
        return r;
    }
    case JSON_TRUE: (*i)++; return v_bool(1);
    case JSON_FALSE: (*i)++; return v_bool(0);
    default: (*i)++; return v_none();
    }
}

/* Parse a JSON text into a value; the token array is temporary (arena top). */
static val json_text_val(interp *I, const char *js, size_t len, const char *what)
{
    json_parser p = {0};
    int n = json_parse(&p, js, len, NULL, 0);
    if (n < 0)
        IFAIL(I, CHAT_TMPL_ERR_INPUT, "%s: %s at byte %zu", what, json_strerror(n), p.err_pos);
    size_t hi = I->a.hi;
    json_tok *t = arena_alloc_top(&I->a, (size_t)n * sizeof(json_tok));
    if (!t) IFAIL(I, CHAT_TMPL_ERR_NOMEM, "out of memory (%s: %d JSON tokens)", what, n);
    json_parser p2 = {0};
    if (json_parse(&p2, js, len, t, n) != n) IFAIL(I, CHAT_TMPL_ERR_INPUT, "%s: JSON changed", what);
    int i = 0;
    val v = json_val(I, js, t, &i);
    I->a.hi = hi;
    return v;
}

/* CHAT_TMPL_ARGS_OBJECT: tool_calls[*].function.arguments strings that hold
 * a JSON object become that object. */
static void args_to_objects(interp *I, val messages)
{
    if (messages.t != VT_LIST) return;
    for (uint32_t m = 0; m < messages.u.l->n; m++) {
        val msg = messages.u.l->v[m];
        if (msg.t != VT_DICT) continue;
        int tc = dict_find_str(msg.u.d, "tool_calls", 10);
        if (tc < 0 || msg.u.d->v[tc].t != VT_LIST) continue;
        vlist *calls = msg.u.d->v[tc].u.l;
        for (uint32_t c = 0; c < calls->n; c++) {
            val call = calls->v[c];
            if (call.t != VT_DICT) continue;
            int fi = dict_find_str(call.u.d, "function", 8);
            val fn = fi >= 0 ? call.u.d->v[fi] : call;
            if (fn.t != VT_DICT) continue;
            int ai = dict_find_str(fn.u.d, "arguments", 9);
            if (ai < 0 || fn.u.d->v[ai].t != VT_STR) continue;
            val s = fn.u.d->v[ai];
            json_parser p = {0};
            int n = json_parse(&p, s.u.s, s.n, NULL, 0);
            if (n < 1) continue;
            val obj = json_text_val(I, s.u.s, s.n, "tool call arguments");
            if (obj.t == VT_DICT) fn.u.d->v[ai] = obj;
        }
    }
}

/* CHAT_TMPL_FLATTEN_PARTS: content given as a list of parts becomes the
 * text of its text parts joined with "\n" (other parts are dropped). */
static void flatten_parts(interp *I, val messages)
{
    if (messages.t != VT_LIST) return;
    for (uint32_t m = 0; m < messages.u.l->n; m++) {
        val msg = messages.u.l->v[m];
        if (msg.t != VT_DICT) continue;
        int ci = dict_find_str(msg.u.d, "content", 7);
        if (ci < 0 || msg.u.d->v[ci].t != VT_LIST) continue;
        val parts = msg.u.d->v[ci];
        sink k = sink_arena(I);
        int first = 1;
        for (uint32_t i = 0; i < parts.u.l->n; i++) {
            val part = parts.u.l->v[i];
            if (part.t != VT_DICT) continue;
            int ti = dict_find_str(part.u.d, "type", 4), xi = dict_find_str(part.u.d, "text", 4);
            if (ti < 0 || xi < 0 || part.u.d->v[ti].t != VT_STR || part.u.d->v[xi].t != VT_STR) continue;
            if (!name_eq(part.u.d->v[ti].u.s, part.u.d->v[ti].n, "text")) continue;
            if (!first) sink_putc(I, &k, '\n');
            sink_put(I, &k, part.u.d->v[xi].u.s, part.u.d->v[xi].n);
            first = 0;
        }
        msg.u.d->v[ci] = sink_val(I, &k);
    }
}

/* ======================================================================
 * Public API
 * ====================================================================== */

const char *chat_tmpl_strerror(int err)
{
    switch (err) {
    case 0: return "ok";
    case CHAT_TMPL_ERR_SYNTAX: return "template syntax error";
    case CHAT_TMPL_ERR_RENDER: return "template render error";
    case CHAT_TMPL_ERR_RAISED: return "template raised an exception";
    case CHAT_TMPL_ERR_NOMEM: return "out of template memory";
    case CHAT_TMPL_ERR_OUTPUT: return "rendered prompt too large";
    case CHAT_TMPL_ERR_LIMIT: return "template limit reached";
    case CHAT_TMPL_ERR_INPUT: return "invalid template input";
    case CHAT_TMPL_ERR_UNSUPPORTED: return "unsupported template feature";
    default: return "unknown error";
    }
}

/* ---- Jinja2's scoping of top-level names ----
 * Jinja2 compiles each top-level name to one local variable. When the first
 * mention of a name at the top level (in template order; bodies of loops,
 * macros, set blocks and generation blocks are their own scopes and do not
 * count) is an assignment, that variable starts out *undefined*, hiding a
 * render variable of the same name from loops and macros that run before
 * the assignment. A name first mentioned inside an if-branch is resolved
 * from the render variables instead (Jinja2's branch merging). */

static int names_has(const namelist *l, const char *s, size_t n)
{
    for (; l; l = l->next)
        if (l->n == n && memcmp(l->s, s, n) == 0) return 1;
    return 0;
}

static void names_add(parser *P, namelist **l, const char *s, size_t n)
{
    if (names_has(*l, s, n)) return;
    namelist *x = arena_alloc_raw(P->a, sizeof *x, 8);
    if (!x) fail_at(P->e, CHAT_TMPL_ERR_NOMEM, 0, "out of memory (scope analysis)");
    x->s = s;
    x->n = (uint32_t)n;
    x->next = *l;
    *l = x;
}

static void scope_loads(parser *P, const node *x, namelist **seen)
{
    if (!x) return;
    if (x->kind == N_NAME) names_add(P, seen, x->s, x->n);
    scope_loads(P, x->a, seen);
    scope_loads(P, x->b, seen);
    scope_loads(P, x->c, seen);
    scope_loads(P, x->d, seen);
    for (const node *k = x->kids; k; k = k->next) scope_loads(P, k, seen);
}

static void scope_store(parser *P, const char *s, size_t n, namelist **seen, namelist **hidden, int in_branch)
{
    if (!in_branch && !names_has(*seen, s, n)) names_add(P, hidden, s, n);
    names_add(P, seen, s, n);
}

static void scope_root(parser *P, const node *x, namelist **seen, namelist **hidden, int in_branch)
{
    for (; x; x = x->next) {
        switch (x->kind) {
        case S_PRINT: scope_loads(P, x->a, seen); break;
        case S_IF:
            scope_loads(P, x->a, seen);
            scope_root(P, x->b, seen, hidden, 1);
            scope_root(P, x->c, seen, hidden, 1);
            break;
        case S_FOR: scope_loads(P, x->b, seen); break;
        case S_SET: case S_SETBLOCK:
            if (x->kind == S_SET) scope_loads(P, x->b, seen);
            if (x->a->kind == N_NAME) scope_store(P, x->a->s, x->a->n, seen, hidden, in_branch);
            else if (x->a->kind == N_NSREF) names_add(P, seen, x->a->s, x->a->n);
            else for (const node *k = x->a->kids; k; k = k->next) scope_store(P, k->s, k->n, seen, hidden, in_branch);
            break;
        case S_MACRO: scope_store(P, x->s, x->n, seen, hidden, in_branch); break;
        case S_FILTERBLOCK: scope_loads(P, x->a, seen); break;
        case S_WITH: for (const node *k = x->kids; k; k = k->next) scope_loads(P, k->a, seen); break;
        default: break;
        }
    }
}

int chat_tmpl_compile(const char *src, size_t len, void *mem, size_t cap,
                      const chat_tmpl **out, char *err, size_t errcap)
{
    errctx e;
    memset(&e, 0, sizeof e);
    e.msg = err;
    e.msgcap = errcap;
    if (err && errcap) err[0] = 0;
    *out = NULL;
    arena a;
    arena_init(&a, mem, cap);
    if (setjmp(e.jb)) return e.code;
    if (len > (size_t)UINT32_MAX / 2) fail_at(&e, CHAT_TMPL_ERR_NOMEM, 0, "template too large");
    chat_tmpl *t = arena_alloc_raw(&a, sizeof *t, 8);
    char *s = t ? arena_alloc_raw(&a, len + 1, 1) : NULL;
    if (!s) fail_at(&e, CHAT_TMPL_ERR_NOMEM, 0, "out of memory (template of %zu bytes)", len);
    /* normalize newlines (\r\n, \r -> \n) and drop one trailing newline */
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            s[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else {
            s[n++] = src[i];
        }
    }
    if (n > 0 && s[n - 1] == '\n') n--;
    s[n] = 0;
    a.lo -= len - n;
    lexer L = {&e, &a, s, n, NULL, 0, 0, 1};
    lex(&L);
    parser P;
    memset(&P, 0, sizeof P);
    P.e = &e;
    P.a = &a;
    P.s = s;
    P.t = L.toks;
    P.ntok = L.ntok;
    int which = 0;
    t->body = body(&P, NULL, &which);
    if (P.hard_unknown) fail_at(&e, CHAT_TMPL_ERR_SYNTAX, P.unk_line, "%s", P.unk);
    namelist *seen = NULL;
    t->hidden = NULL;
    scope_root(&P, t->body, &seen, &t->hidden, 0);
    t->size = (size_t)(a.base - (char *)mem) + a.lo;
    *out = t;
    return 0;
}

size_t chat_tmpl_size(const chat_tmpl *t) { return t ? t->size : 0; }

#define VSTACK 512    /* call arguments in flight (all nesting levels) */

static long render_once(const chat_tmpl *t, const chat_tmpl_input *in, unsigned flags,
                        void *scratch, size_t scratch_cap,
                        char *out, size_t cap, char *err, size_t errcap)
{
    interp *I;
    interp st;
    I = &st;
    memset(I, 0, sizeof *I);
    I->e.msg = err;
    I->e.msgcap = errcap;
    if (err && errcap) err[0] = 0;
    arena_init(&I->a, scratch, scratch_cap);
    sink top = {out, 0, cap, 0, 0};
    I->out = &top;
    I->flags = flags;
    I->now = in->now;
    I->max_steps = in->max_steps ? in->max_steps : CHAT_TMPL_STEPS_DEFAULT;
    I->max_depth = in->max_depth > 0 ? in->max_depth : CHAT_TMPL_DEPTH_DEFAULT;
    if (I->max_depth > CHAT_TMPL_DEPTH_MAX) I->max_depth = CHAT_TMPL_DEPTH_MAX;
    if (setjmp(I->e.jb)) {
        if (out && cap) out[0] = 0;
        return I->e.code;
    }
    if (!t || !in) fail_at(&I->e, CHAT_TMPL_ERR_INPUT, 0, "no template or input");
    I->vs = ialloc(I, VSTACK * sizeof(arg), 8);
    I->vscap = VSTACK;

    /* render variables */
    frame *ctx = frame_push(I);
    I->ctx = ctx;
    if (!in->messages_json) fail_at(&I->e, CHAT_TMPL_ERR_INPUT, 0, "messages missing");
    val msgs = json_text_val(I, in->messages_json, in->messages_len, "messages");
    if (msgs.t != VT_LIST) fail_at(&I->e, CHAT_TMPL_ERR_INPUT, 0, "messages must be a JSON array");
    if (flags & CHAT_TMPL_ARGS_OBJECT) args_to_objects(I, msgs);
    if (flags & CHAT_TMPL_FLATTEN_PARTS) flatten_parts(I, msgs);
    frame_set(I, ctx, "messages", 8, msgs);
    frame_set(I, ctx, "tools", 5, in->tools_json ? json_text_val(I, in->tools_json, in->tools_len, "tools") : v_none());
    frame_set(I, ctx, "documents", 9, v_none());
    frame_set(I, ctx, "add_generation_prompt", 21, v_bool(in->add_generation_prompt));
    if (in->bos_token) frame_set(I, ctx, "bos_token", 9, v_cstr(in->bos_token));
    if (in->eos_token) frame_set(I, ctx, "eos_token", 9, v_cstr(in->eos_token));
    if (flags & CHAT_TMPL_ENABLE_THINKING) frame_set(I, ctx, "enable_thinking", 15, v_bool(1));
    if (in->vars_json) {
        val vars = json_text_val(I, in->vars_json, in->vars_len, "vars");
        if (vars.t != VT_DICT) fail_at(&I->e, CHAT_TMPL_ERR_INPUT, 0, "vars must be a JSON object");
        for (uint32_t i = 0; i < vars.u.d->n; i++)
            frame_set(I, ctx, vars.u.d->k[i].u.s, vars.u.d->k[i].n, vars.u.d->v[i]);
    }
    frame *root = frame_push(I);   /* the template's own top-level scope */
    for (const namelist *h = t->hidden; h; h = h->next) frame_set(I, root, h->s, h->n, v_undef(h->s, h->n));

    int ctl = 0;
    exec_body(I, t->body, &ctl);

    size_t n = top.len;
    if ((flags & CHAT_TMPL_STRIP_BOS) && in->bos_token && in->bos_token[0]) {
        size_t bl = strlen(in->bos_token);
        if (n >= bl && memcmp(out, in->bos_token, bl) == 0) {
            memmove(out, out + bl, n - bl);
            n -= bl;
        }
    }
    if ((flags & CHAT_TMPL_STRIP_EOS) && in->eos_token && in->eos_token[0]) {
        size_t el = strlen(in->eos_token);
        if (n >= el && memcmp(out + n - el, in->eos_token, el) == 0) n -= el;
    }
    if (n < cap) out[n] = 0;
    return (long)n;
}

long chat_tmpl_render(const chat_tmpl *t, const chat_tmpl_input *in,
                      void *scratch, size_t scratch_cap,
                      char *out, size_t cap, char *err, size_t errcap)
{
    unsigned flags = in ? in->flags : 0;
    long r = render_once(t, in, flags, scratch, scratch_cap, out, cap, err, errcap);
    unsigned more = CHAT_TMPL_ARGS_OBJECT | CHAT_TMPL_FLATTEN_PARTS;
    if ((flags & CHAT_TMPL_ADAPT) && (r == CHAT_TMPL_ERR_RENDER || r == CHAT_TMPL_ERR_RAISED) &&
        (flags & more) != more) {
        /* the template may want object arguments / string content */
        char err2[8];
        long r2 = render_once(t, in, flags | more, scratch, scratch_cap, out, cap, err2, sizeof err2);
        if (r2 >= 0) {
            if (err && errcap) err[0] = 0;
            return r2;
        }
        r = render_once(t, in, flags, scratch, scratch_cap, out, cap, err, errcap);   /* first error */
    }
    return r;
}

long chat_tmpl_render_src(const char *src, size_t src_len, const chat_tmpl_input *in,
                          void *mem, size_t mem_cap,
                          char *out, size_t cap, char *err, size_t errcap)
{
    const chat_tmpl *t;
    int rc = chat_tmpl_compile(src, src_len, mem, mem_cap, &t, err, errcap);
    if (rc < 0) return rc;
    size_t used = chat_tmpl_size(t);
    return chat_tmpl_render(t, in, (char *)mem + used, mem_cap - used, out, cap, err, errcap);
}

const char chat_tmpl_chatml[] =
    "{%- for message in messages -%}\n"
    "{{- '<|im_start|>' + message['role'] + '\\n' -}}\n"
    "{%- if message['content'] is string -%}\n"
    "{{- message['content'] -}}\n"
    "{%- elif message['content'] is iterable -%}\n"
    "{%- for part in message['content'] if part['type'] == 'text' -%}{{- part['text'] -}}{%- endfor -%}\n"
    "{%- endif -%}\n"
    "{{- '<|im_end|>\\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}\n";
