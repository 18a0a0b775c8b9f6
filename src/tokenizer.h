/* tokenizer.h — text <-> token ids for every vocabulary family GGUF models use.
 *
 * Built from a GGUF file's tokenizer.* metadata alone (vocab-only files load
 * too), reproducing llama.cpp's tokenizer token for token, quirks included
 * (double BOS when the text already starts with it, SentencePiece space prefix
 * after special tokens, Phi-3's right-stripping of specials, ...):
 *   TOK_TYPE_SPM  tokenizer.ggml.model "llama": SentencePiece, merges by score,
 *                 byte fallback <0xNN>, "▁" for spaces, add_space_prefix.
 *   TOK_TYPE_BPE  "gpt2": byte-level BPE, merges by rank, the pre-tokenizer
 *                 chosen by tokenizer.ggml.pre (llama3/llama-bpe, qwen2,
 *                 qwen35, gpt-2, mpt, deepseek-llm, deepseek-coder, falcon,
 *                 starcoder, refact, command-r, default and their aliases);
 *                 "gemma4": BPE over raw UTF-8 with "▁" spaces and <0xNN>
 *                 byte fallback.
 *   TOK_TYPE_WPM  "bert": WordPiece (lower-casing and accent stripping as the
 *                 vocab says), [UNK] for unknown words.
 * Not supported (tok_vocab_load says so): t5/UGM, rwkv, plamo2, no_vocab.
 *
 * Usage:
 *     tok_vocab v; char err[256];
 *     if (tok_vocab_load(&v, &gguf, err, sizeof err) < 0) { fprintf(stderr, "%s\n", err); ... }
 *     int32_t ids[512];
 *     int n = tok_encode(&v, text, len, 1, 1, ids, 512);   // add_special, parse_special
 *     if (n < 0 && n != TOK_ENCODE_ERROR) ... retry with -n slots ...
 *     char piece[TOK_PIECE_MAX]; int k = tok_token_to_piece(&v, ids[0], piece, sizeof piece, 0, 1);
 *     tok_vocab_free(&v);
 *
 * Lifetime: tok_vocab copies everything it needs out of the gguf_file, which
 * may be closed right after tok_vocab_load. A loaded vocab is read-only:
 * any number of threads may encode/decode with it concurrently.
 *
 * Memory: tok_vocab_load allocates all tables once (token texts, the
 * text -> id hash, the merge table, a piece cache). tok_encode allocates
 * working memory per call, proportional to the input, and frees it before
 * returning. The decode path (tok_token_to_piece, tok_detokenize,
 * tok_stream_*) never allocates.
 */
#ifndef MOTE_TOKENIZER_H
#define MOTE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

#define TOK_NULL (-1)                 /* "no such token" (e.g. no EOT id) */
#define TOK_ENCODE_ERROR INT32_MIN    /* tok_encode: out of memory / input too large */
#define TOK_PIECE_MAX 4096            /* longest token text and piece (longer tokens: load error) */

enum tok_type { TOK_TYPE_SPM = 1, TOK_TYPE_BPE = 2, TOK_TYPE_WPM = 3 };  /* llama.cpp's numbering */

/* Token attributes (llama.cpp's llama_token_attr bits). */
enum tok_attr {
    TOK_ATTR_UNDEFINED = 0,
    TOK_ATTR_UNKNOWN = 1 << 0,
    TOK_ATTR_UNUSED = 1 << 1,
    TOK_ATTR_NORMAL = 1 << 2,
    TOK_ATTR_CONTROL = 1 << 3,
    TOK_ATTR_USER_DEFINED = 1 << 4,
    TOK_ATTR_BYTE = 1 << 5,
    TOK_ATTR_LSTRIP = 1 << 7,     /* special token eats whitespace on its left */
    TOK_ATTR_RSTRIP = 1 << 8      /* ... on its right */
};

enum tok_err {
    TOK_ERR_FORMAT = -2,          /* missing or malformed tokenizer metadata */
    TOK_ERR_NOMEM = -3,
    TOK_ERR_UNSUPPORTED = -4      /* tokenizer model or pre-tokenizer we do not implement */
};

typedef struct tok_special_node tok_special_node;   /* private */

typedef struct tok_vocab {
    /* public, read-only after load: */
    int type;                     /* enum tok_type */
    int32_t n_vocab;
    int32_t bos, eos, eot, eom, unk, sep, pad, mask, nl;   /* TOK_NULL when absent */
    int32_t fim_pre, fim_suf, fim_mid, fim_pad, fim_rep, fim_sep;
    int add_bos, add_eos, add_sep;      /* added by tok_encode when add_special */
    int add_space_prefix;
    int max_token_len;            /* bytes of the longest token text */
    char model[32];               /* tokenizer.ggml.model */
    char pre[64];                 /* tokenizer.ggml.pre ("" when absent) */

    /* private: */
    int pre_kind;                 /* which pre-tokenizer program */
    int clean_spaces, escape_ws, ignore_merges, byte_encode;
    int remove_extra_ws, lowercase, strip_accents;
    int spm_words;                /* SPM merges may run word by word (see tokenizer.c) */
    char *text;                   /* all token texts back to back */
    uint32_t *text_off;           /* (n_vocab + 1) offsets into text */
    float *score;                 /* (n_vocab) */
    uint16_t *attr;               /* (n_vocab) enum tok_attr bits */
    char *piece;                  /* token_to_piece(special=1) of every token, back to back */
    uint32_t *piece_off;          /* (n_vocab + 1) offsets into piece */
    uint64_t *hash;               /* text -> (fingerprint << 32 | id + 1), open addressing, 0 = empty */
    uint32_t hash_mask;
    struct tok_merge *merge;      /* (left, right) -> rank, result; NULL unless BPE */
    uint32_t merge_mask;
    int32_t byte_tok[256];        /* SPM/gemma4: <0xNN>; byte-level BPE: the byte's symbol */
    int32_t char1_tok[256];       /* token whose text is that single byte, or TOK_NULL */
    uint8_t byte_utf8[256][3];    /* byte-level BPE: [0] = length, [1..] = UTF-8 of the byte's symbol */
    int32_t *special;             /* special token ids by matching priority */
    int n_special;
    tok_special_node *trie;       /* byte trie over the special token texts */
    int n_trie;
    int32_t trie_root[256];       /* first-level children of the trie, -1 = none */
    int32_t *eog;                 /* sorted end-of-generation ids */
    int n_eog;
} tok_vocab;

/* Build the vocabulary from g's tokenizer.* keys. 0 on success; on failure a
 * negative tok_err, a one-line reason in err (if errcap > 0) and v needs no
 * tok_vocab_free (calling it is harmless). */
int tok_vocab_load(tok_vocab *v, const gguf_file *g, char *err, size_t errcap);
void tok_vocab_free(tok_vocab *v);

/* Text to ids. text need not be NUL-terminated nor valid UTF-8 (invalid bytes
 * are handled as llama.cpp does: U+FFFD for BPE/WPM, byte tokens for SPM).
 * add_special: add BOS/EOS (BERT: [CLS] ... [SEP]) as the vocab says.
 * parse_special: recognise control-token texts ("<|im_end|>") in text;
 * user-defined tokens are always recognised, as in llama.cpp.
 * Returns the number of ids written to ids[0..cap-1]; if cap is too small,
 * nothing useful is written and -(number needed) is returned (retry with that
 * many); TOK_ENCODE_ERROR if memory ran out or len > INT32_MAX / 4. */
int32_t tok_encode(const tok_vocab *v, const char *text, size_t len, int add_special,
                   int parse_special, int32_t *ids, int32_t cap);

/* The bytes of token id, like llama_token_to_piece: at most lstrip leading
 * spaces skipped; control/unknown tokens render as "" unless special.
 * Returns the length written to buf (no NUL), -(length needed) if cap is too
 * small (TOK_PIECE_MAX always suffices), 0 for ids out of range. */
int32_t tok_token_to_piece(const tok_vocab *v, int32_t id, char *buf, int32_t cap,
                           int lstrip, int special);

/* Ids to text, like llama_detokenize: remove_special drops a leading BOS /
 * trailing EOS the vocab adds; unparse_special renders control tokens. Leading
 * space of SPM text removed, BPE "clean up tokenization spaces" applied as
 * the vocab says. Returns the length written (no NUL) or -(length needed). */
int32_t tok_detokenize(const tok_vocab *v, const int32_t *ids, int32_t n, char *text,
                       int32_t cap, int remove_special, int unparse_special);

/* Accessors. Ids out of range are "not eog", "not control", attr 0. */
int tok_is_eog(const tok_vocab *v, int32_t id);
int tok_is_control(const tok_vocab *v, int32_t id);
int tok_attr(const tok_vocab *v, int32_t id);
/* Raw vocabulary text of id (not the rendered piece); *len its length. NULL if out of range. */
const char *tok_text(const tok_vocab *v, int32_t id, size_t *len);
/* Exact text -> id lookup, TOK_NULL if absent. */
int32_t tok_lookup(const tok_vocab *v, const char *text, size_t len);

/* Streaming detokenizer for generated tokens: pieces are appended and only
 * complete UTF-8 sequences are released, so a character split across tokens
 * is never emitted half (up to 3 bytes are held back). Bytes that can never
 * form a valid sequence are replaced by U+FFFD, so the output is always valid
 * UTF-8. No leading space is stripped (generation continues a prompt). */
typedef struct tok_stream {
    uint8_t held[4];
    int n_held;
} tok_stream;

void tok_stream_init(tok_stream *s);
/* Append token id (special: render control tokens) and write what is complete
 * into out[0..cap-1]. Returns bytes written, or -(bytes needed) with nothing
 * consumed if cap is too small (3 * (TOK_PIECE_MAX + 3) always suffices). */
int32_t tok_stream_push(tok_stream *s, const tok_vocab *v, int32_t id, int special,
                        char *out, int32_t cap);
/* End of stream: held bytes (an incomplete sequence) come out as one U+FFFD.
 * Returns bytes written (0 or 3; cap >= 3 always suffices) or -(needed). */
int32_t tok_stream_flush(tok_stream *s, char *out, int32_t cap);

#endif
