/* dialogue_src.h — the default dialogue corpus of `nabla chat corpus`: parsers
 * of the dialogue that Debian packages ship (Wesnoth WML, Endless Sky
 * conversations, fortunes, Freedroid RPG Lua dialogs, Jane Austen's novels in
 * R's lazy-load database, the World English Bible's SWORD zText module), the cutting of conversations into (context,
 * response) pairs, the split by group and the CSV files in the Ubuntu
 * Dialogue Corpus layout. Internal to the library and the command (nb__
 * prefix); tests and fuzzers include it. The store is dialogue_build.c, each
 * source's parser a dialogue_SOURCE.c (wml, endless_sky, fortunes,
 * freedroid, austen, ztext), the pairs and the CSV files dialogue_pairs.c.
 *
 * A conversation is a list of turns; a turn is the utterances of one speaker
 * in a row, stored formatted as "u1 __eou__ u2 __eou__". Each conversation
 * belongs to a group (a scenario file, a chapter, an NPC, a conversation
 * block, a fortune) and a group never spans two splits. */
#ifndef NB_DIALOGUE_SRC_H
#define NB_DIALOGUE_SRC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The sources, in the order of the counts table. */
typedef enum {
    NB_DLG_WESNOTH, NB_DLG_ENDLESS_SKY, NB_DLG_FORTUNES, NB_DLG_FREEDROID, NB_DLG_AUSTEN, NB_DLG_BIBLE,
    NB_DLG_NSOURCES
} nb__dlg_source;
const char *nb__dlg_source_name(int source); /* "wesnoth", "endless-sky", ... */

/* Pairs take at most this many turns of context before the response. */
#define NB_DLG_MAX_CONTEXT_TURNS 8

typedef struct nb__dlg_conv {
    int32_t group;  /* index into groups */
    int32_t source;
    int64_t first;  /* first turn in turns */
    int32_t n;      /* number of turns */
} nb__dlg_conv;

typedef struct nb__dlg {
    char **turns;
    int64_t nturns, capturns;
    nb__dlg_conv *convs;
    int64_t nconvs, capconvs;
    char **groups;          /* "source:file[:part]", unique */
    int32_t *group_source;
    int64_t ngroups, capgroups;
    /* the open conversation */
    bool open;
    int32_t cur_group, cur_source;
    char *last_speaker;     /* NULL: the next utterance starts a turn */
    bool oom;               /* an allocation failed: every call is a no-op */
} nb__dlg;

void nb__dlg_init(nb__dlg *d);
void nb__dlg_free(nb__dlg *d);
/* Ends the open conversation (if any) and opens one in the group named
 * group (created on first use). */
void nb__dlg_begin(nb__dlg *d, int source, const char *group);
/* Adds an utterance to the open conversation: text (len bytes) is cleaned
 * (whitespace collapsed, invalid UTF-8 replaced by '?', the markers __eou__
 * and __eot__ removed); empty text is dropped. A speaker equal to the last
 * one continues its turn; NULL always starts a new turn. */
void nb__dlg_say(nb__dlg *d, const char *speaker, const char *text, size_t len);
/* Ends the open conversation; one of fewer than two turns is dropped. */
void nb__dlg_end(nb__dlg *d);

/* The parsers: each reads one file's bytes (name: for messages and group
 * names) and adds its conversations to d. A malformed file returns -1 with
 * nb_error("name:line: what was expected") and adds nothing; the caller
 * skips it with a warning. */
int nb__dlg_parse_wml(nb__dlg *d, const char *name, const char *buf, size_t len);
int nb__dlg_parse_endless_sky(nb__dlg *d, const char *name, const char *buf, size_t len);
int nb__dlg_parse_fortunes(nb__dlg *d, const char *name, const char *buf, size_t len);
int nb__dlg_parse_freedroid(nb__dlg *d, const char *name, const char *buf, size_t len);
/* R lazy-load database (.rdb): the character vectors in it, one per novel. */
int nb__dlg_parse_rdb(nb__dlg *d, const char *name, const uint8_t *buf, size_t len);
/* Jane Austen's novel as lines (a character vector): chapters are groups,
 * runs of quoted paragraphs are conversations. */
int nb__dlg_add_novel(nb__dlg *d, const char *name, char *const *lines, int64_t nlines);

/* A SWORD zText module's testament (ot or nt): the .bzs block index (12-byte
 * entries: offset, size, uncompressed size), the .bzv verse index (10-byte
 * entries: block, offset, size) and the .bzz zlib blocks of OSIS XML.
 * Chapters (<chapter osisID=...>) are groups; runs of consecutive verses
 * holding quotation marks are conversations, a verse a turn. */
int nb__dlg_parse_ztext(nb__dlg *d, const char *name, const uint8_t *bzs, size_t nbzs, const uint8_t *bzv,
                        size_t nbzv, const uint8_t *bzz, size_t nbzz);

/* A (context, response) pair: turn `resp` of conversation conv, with up to
 * NB_DLG_MAX_CONTEXT_TURNS turns before it as context. */
typedef struct nb__dlg_pair {
    int64_t conv;
    int32_t resp;  /* index within the conversation, >= 1 */
    int8_t split;  /* 0 train, 1 valid, 2 test */
} nb__dlg_pair;

/* Every pair of d, each assigned to a split by its group: groups are
 * shuffled (seed) per source and taken in that order into train until 80%
 * of the source's pairs, then valid until 90%, then test. Returns the pairs
 * (malloc'd, *n of them) or NULL with an error (out of memory; *n = 0 and
 * NULL for no pairs at all). */
nb__dlg_pair *nb__dlg_pairs(const nb__dlg *d, uint64_t seed, int64_t *n);
/* The context of a pair, "t1 __eot__ t2 __eot__" (malloc'd). */
char *nb__dlg_context(const nb__dlg *d, const nb__dlg_pair *p);
static inline const char *nb__dlg_response(const nb__dlg *d, const nb__dlg_pair *p) {
    return d->turns[d->convs[p->conv].first + p->resp];
}

/* The three CSV files of one split as text (malloc'd, *len bytes), RFC 4180
 * with CRLF line ends. split 0: "Context,Utterance,Label", each pair twice:
 * with its response (1) and with a random other response of the split (0),
 * rows shuffled. splits 1 and 2: "Context,Ground Truth Utterance,
 * Distractor_0..Distractor_8", distractors drawn from the split's responses,
 * all different from the true response and from each other. NULL with an
 * error if the split has too few distinct responses or on out of memory. */
char *nb__dlg_csv(const nb__dlg *d, const nb__dlg_pair *pairs, int64_t npairs, int split, uint64_t seed,
                  size_t *len);
/* A growing NUL-terminated text buffer; oom is set when an append failed. */
typedef struct nb__sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} nb__sbuf;
void nb__sbuf_put(nb__sbuf *b, const char *s, size_t n);
/* Appends s as a CSV field, quoted when it holds a comma, quote, CR or LF
 * (quotes doubled). */
void nb__csv_field(nb__sbuf *b, const char *s);

#endif
