/* test_dialogue_src.c — the default dialogue corpus (src/io/dialogue_src.h):
 * each parser on a tiny inline sample, malformed files refused whole, the
 * split by group, distractors never equal to the truth, and the CSV read
 * back by the corpus reader (nb_dialogue_parse). */
#include "../src/io/dialogue_src.h"
#include "test.h"
#include <stdlib.h>
#include <zlib.h>

/* The turns of conversation c, for comparisons. */
static const char *turn(const nb__dlg *d, int64_t c, int t) { return d->turns[d->convs[c].first + t]; }

TEST(dlg_wml_two_speakers) {
    const char *wml = "#textdomain wesnoth-test\n"
                      "[scenario]\n"
                      "    id=01_Test\n"
                      "    [event]\n"
                      "        name=start\n"
                      "        [message]\n"
                      "            speaker=Konrad\n"
                      "            message= _ \"What is this place?\"\n"
                      "        [/message]\n"
                      "        [message]\n"
                      "            speaker=narrator\n"
                      "            message= _ \"The narrator is left out.\"\n"
                      "        [/message]\n"
                      "        [message]\n"
                      "            speaker=Delfador\n"
                      "            {DELFADOR_VARIATION mad}\n"
                      "            message= _ \"The \"\"fabled\"\" Gryphon\n"
                      "Mountain.\" # a comment\n"
                      "        [/message]\n"
                      "        [message]\n"
                      "            speaker=Delfador\n"
                      "            message= _ \"Be <i>careful</i>.\" + _ \"Very.\"\n"
                      "            [option]\n"
                      "                message= _ \"An option is not said.\"\n"
                      "            [/option]\n"
                      "        [/message]\n"
                      "        [message]\n"
                      "            speaker=Konrad\n"
                      "            message= _ \"Onward!\"\n"
                      "        [/message]\n"
                      "    [/event]\n"
                      "    [event]\n"
                      "        [message]\n"
                      "            speaker=Li'sar\n"
                      "            message= _ \"Alone, one turn: no pair.\"\n"
                      "        [/message]\n"
                      "    [/event]\n"
                      "[/scenario]\n";
    nb__dlg d;
    nb__dlg_init(&d);
    CHECK(nb__dlg_parse_wml(&d, "a/01_Test.cfg", wml, strlen(wml)) == 0);
    CHECK(d.nconvs == 1);
    if (d.nconvs == 1) {
        CHECK(d.convs[0].n == 3);
        CHECK(!strcmp(turn(&d, 0, 0), "What is this place? __eou__"));
        CHECK_MSG(!strcmp(turn(&d, 0, 1), "The \"fabled\" Gryphon Mountain. __eou__ Be careful.Very. __eou__"), "%s",
                  turn(&d, 0, 1));
        CHECK(!strcmp(turn(&d, 0, 2), "Onward! __eou__"));
        CHECK(!strcmp(d.groups[d.convs[0].group], "a/01_Test.cfg"));
    }
    int64_t np;
    nb__dlg_pair *p = nb__dlg_pairs(&d, 1, &np);
    CHECK(np == 2);
    if (np == 2) {
        char *ctx = nb__dlg_context(&d, &p[1]);
        CHECK_MSG(!strcmp(ctx, "What is this place? __eou__ __eot__ The \"fabled\" Gryphon Mountain. __eou__ Be "
                               "careful.Very. __eou__ __eot__"),
                  "%s", ctx);
        CHECK(!strcmp(nb__dlg_response(&d, &p[1]), "Onward! __eou__"));
        free(ctx);
    }
    free(p);
    nb__dlg_free(&d);
}

TEST(dlg_malformed_file_adds_nothing) {
    nb__dlg d;
    nb__dlg_init(&d);
    const char *good = "[event]\n[message]\nspeaker=A\nmessage=\"hi\"\n[/message]\n[message]\nspeaker=B\n"
                       "message=\"hello\"\n[/message]\n[/event]\n";
    CHECK(nb__dlg_parse_wml(&d, "good.cfg", good, strlen(good)) == 0);
    int64_t nc = d.nconvs, nt = d.nturns, ng = d.ngroups;
    const char *bad = "[event]\n[message]\nspeaker=A\nmessage=\"hi\"\n[/message]\n[message]\nspeaker=B\n"
                      "message= _ \"never closed\n[/message]\n[/event]\n";
    CHECK(nb__dlg_parse_wml(&d, "bad.cfg", bad, strlen(bad)) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "bad.cfg:8: unterminated string"), "%s", nb_errmsg());
    const char *es = "mission \"M\"\n\ton offer\n\t\tconversation\n\t\t\t`Hello.\n";
    CHECK(nb__dlg_parse_endless_sky(&d, "bad.txt", es, strlen(es)) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "bad.txt:4: unterminated ` quote"), "%s", nb_errmsg());
    const char *lua = "Npc:says(_\"open\n";
    CHECK(nb__dlg_parse_freedroid(&d, "bad.lua", lua, strlen(lua)) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "bad.lua:1: unterminated string"), "%s", nb_errmsg());
    const char fortune[] = "<a> x\n<b> y\0z\n";
    CHECK(nb__dlg_parse_fortunes(&d, "bad", fortune, sizeof fortune - 1) == -1);
    const uint8_t rdb[] = {0, 0, 0, 10, 0x78, 0x9c, 1, 2, 3};
    CHECK(nb__dlg_parse_rdb(&d, "bad.rdb", rdb, sizeof rdb) == -1);
    CHECK(strstr(nb_errmsg(), "bad.rdb: object 0"));
    /* a size no zlib stream of the bytes left can inflate to is refused
     * before it is allocated (these 7 bytes once asked for 224 MiB) */
    const uint8_t big[] = {0x0e, 0x00, 0xd1, 0x00, 0x00, 0x5c, 0x0a};
    CHECK(nb__dlg_parse_rdb(&d, "big.rdb", big, sizeof big) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "big.rdb: object 0 at byte 0: 234934528 bytes uncompressed cannot come from the 3 "
                                  "bytes left"), "%s", nb_errmsg());
    CHECK(d.nconvs == nc && d.nturns == nt && d.ngroups == ng);
    nb__dlg_free(&d);
}

TEST(dlg_fortunes_irc_and_qa) {
    const char *f = "A saying with no dialogue.\n"
                    "\t\t-- Someone\n"
                    "%\n"
                    "<sel> need help: my first packet\n"
                    "      gets lost :-(\n"
                    "<netgod> sel: dont send the first one,\n"
                    "<netgod> start with #2\n"
                    "* sel laughs\n"
                    "%\n"
                    "Q:\tWhat is the answer?\n"
                    "A:\tForty-two, as\n"
                    "\teveryone knows.\n"
                    "%\n"
                    "<solo> one speaker only\n"
                    "%\n";
    nb__dlg d;
    nb__dlg_init(&d);
    CHECK(nb__dlg_parse_fortunes(&d, "debian", f, strlen(f)) == 0);
    CHECK(d.nconvs == 2);
    if (d.nconvs == 2) {
        CHECK(d.convs[0].n == 3);
        CHECK_MSG(!strcmp(turn(&d, 0, 0), "need help: my first packet gets lost :-( __eou__"), "%s", turn(&d, 0, 0));
        CHECK(!strcmp(turn(&d, 0, 1), "sel: dont send the first one, __eou__ start with #2 __eou__"));
        CHECK(!strcmp(turn(&d, 0, 2), "sel laughs __eou__"));
        CHECK(d.convs[1].n == 2);
        CHECK(!strcmp(turn(&d, 1, 0), "What is the answer? __eou__"));
        CHECK(!strcmp(turn(&d, 1, 1), "Forty-two, as everyone knows. __eou__"));
        CHECK(d.convs[0].group != d.convs[1].group); /* a fortune is a group */
    }
    nb__dlg_free(&d);
}

TEST(dlg_endless_sky_choices) {
    const char *es = "# a comment\n"
                     "mission \"Test\"\n"
                     "\ton offer\n"
                     "\t\tconversation\n"
                     "\t\t\t`A stranger waves at you.`\n"
                     "\t\t\t`\t\"Need a ride?\" she asks.`\n"
                     "\t\t\tchoice\n"
                     "\t\t\t\t`\t\"Sure, hop in.\"`\n"
                     "\t\t\t\t`\t\"No.\"`\n"
                     "\t\t\t\t\tdecline\n"
                     "\t\t\t\t`\t\"Where to?\"`\n"
                     "\t\t\t\t\tgoto where\n"
                     "\t\t\t`\tShe climbs aboard.`\n"
                     "\t\t\t\taccept\n"
                     "\t\t\tlabel where\n"
                     "\t\t\t`\t\"To the moon,\" she says.`\n";
    nb__dlg d;
    nb__dlg_init(&d);
    CHECK(nb__dlg_parse_endless_sky(&d, "test.txt", es, strlen(es)) == 0);
    CHECK(d.nconvs == 3);
    if (d.nconvs == 3) {
        CHECK(d.convs[0].n == 3 && d.convs[1].n == 2 && d.convs[2].n == 3);
        CHECK_MSG(!strcmp(turn(&d, 0, 0), "A stranger waves at you. __eou__ \"Need a ride?\" she asks. __eou__"), "%s",
                  turn(&d, 0, 0));
        CHECK(!strcmp(turn(&d, 0, 1), "\"Sure, hop in.\" __eou__"));
        CHECK(!strcmp(turn(&d, 0, 2), "She climbs aboard. __eou__"));
        CHECK(!strcmp(turn(&d, 1, 1), "\"No.\" __eou__")); /* declines: no reply */
        CHECK(!strcmp(turn(&d, 2, 2), "\"To the moon,\" she says. __eou__")); /* the goto's label */
        CHECK(d.convs[0].group == d.convs[2].group);
    }
    nb__dlg_free(&d);
}

TEST(dlg_freedroid_nodes) {
    const char *lua = "--[[WIKI\nPURPOSE = \"$$NAME$$ is a test\"\nWIKI]]--\n"
                      "local Npc = FDrpg.get_npc()\n"
                      "return {\n"
                      "\tFirstTime = function()\n"
                      "\t\tTux:says(_\"Hello! I'm new here.\")\n"
                      "\t\tNpc:says(_\"Hey, man! I'm Bender.\")\n"
                      "\t\tNpc:says(_\"And you?\", \"NO_WAIT\")\n"
                      "\t\tTux:says(Tux:get_player_name())\n"
                      "\tend,\n"
                      "\t{\n"
                      "\t\tid = \"node1\",\n"
                      "\t\ttext = _\"You are \\\"sick\\\"?\",\n"
                      "\t\ttopic = \"Sick\",\n"
                      "\t\tcode = function()\n"
                      "\t\t\tNpc:says(_'Nah. It was the pills.') -- a comment: Npc:says(_\"no\")\n"
                      "\t\tend,\n"
                      "\t},\n"
                      "}\n";
    nb__dlg d;
    nb__dlg_init(&d);
    CHECK(nb__dlg_parse_freedroid(&d, "dialogs/Bender.lua", lua, strlen(lua)) == 0);
    CHECK(d.nconvs == 2);
    if (d.nconvs == 2) {
        CHECK(d.convs[0].n == 2);
        CHECK(!strcmp(turn(&d, 0, 1), "Hey, man! I'm Bender. __eou__ And you? __eou__"));
        CHECK_MSG(!strcmp(turn(&d, 1, 0), "You are \"sick\"? __eou__"), "%s", turn(&d, 1, 0));
        CHECK(!strcmp(turn(&d, 1, 1), "Nah. It was the pills. __eou__"));
        CHECK(d.convs[0].group == d.convs[1].group); /* an NPC is a group */
    }
    nb__dlg_free(&d);
}

/* R's XDR serialization of a character vector, compressed as in an .rdb. */
static size_t put_be32(uint8_t *p, int32_t v) {
    p[0] = (uint8_t)((uint32_t)v >> 24), p[1] = (uint8_t)((uint32_t)v >> 16), p[2] = (uint8_t)((uint32_t)v >> 8);
    p[3] = (uint8_t)v;
    return 4;
}
static size_t rdb_strings(uint8_t *out, size_t cap, const char *const *s, int n) {
    uint8_t raw[4096];
    size_t k = 0;
    raw[k++] = 'X', raw[k++] = '\n';
    k += put_be32(raw + k, 3), k += put_be32(raw + k, 0x40201), k += put_be32(raw + k, 0x30500);
    k += put_be32(raw + k, 5), memcpy(raw + k, "UTF-8", 5), k += 5;
    k += put_be32(raw + k, 16), k += put_be32(raw + k, n);
    for (int i = 0; i < n; i++) {
        k += put_be32(raw + k, 9 | 1 << 15); /* CHARSXP, UTF-8 */
        k += put_be32(raw + k, (int32_t)strlen(s[i]));
        memcpy(raw + k, s[i], strlen(s[i])), k += strlen(s[i]);
    }
    uLongf zl = (uLongf)(cap - 4);
    put_be32(out, (int32_t)k);
    if (compress(out + 4, &zl, raw, k) != Z_OK) return 0;
    return zl + 4;
}

TEST(dlg_austen_rdb_quoted_paragraphs) {
    const char *novel[] = {"PERSUASION", "", "CHAPTER 1", "", "Narration opens the chapter.", "",
                           "\"Is it you?\" she", "asked.", "", "\"It is.\"", "", "\"Then stay.\"", "",
                           "He left.", "", "\"Alone.\"", "", "CHAPTER 2", "", "\"Again?\"", "", "\"Again.\""};
    const char *other[] = {"x"}; /* a second object: too small to pair */
    uint8_t buf[8192];
    size_t n = rdb_strings(buf, sizeof buf, novel, (int)(sizeof novel / sizeof *novel));
    n += rdb_strings(buf + n, sizeof buf - n, other, 1);
    CHECK(n > 8);
    nb__dlg d;
    nb__dlg_init(&d);
    CHECK_MSG(nb__dlg_parse_rdb(&d, "Rdata.rdb", buf, n) == 0, "%s", nb_errmsg());
    CHECK(d.nconvs == 2);
    if (d.nconvs == 2) {
        CHECK(d.convs[0].n == 3 && d.convs[1].n == 2);
        CHECK(!strcmp(turn(&d, 0, 0), "\"Is it you?\" she asked. __eou__"));
        CHECK(!strcmp(turn(&d, 0, 2), "\"Then stay.\" __eou__"));
        CHECK(d.convs[0].group != d.convs[1].group); /* chapters are groups */
        CHECK_MSG(strstr(d.groups[d.convs[0].group], "PERSUASION"), "%s", d.groups[d.convs[0].group]);
    }
    nb__dlg_free(&d);
    /* truncated: one byte short */
    nb__dlg_init(&d);
    CHECK(nb__dlg_parse_rdb(&d, "Rdata.rdb", buf, n - 1) == -1);
    CHECK(d.nconvs == 0);
    nb__dlg_free(&d);
}

/* ngroups groups of a few two- or three-turn conversations each, with
 * responses "g<group> r<k>" (distinct) and a few repeated ones ("Yes."). */
static void synthetic(nb__dlg *d, int ngroups) {
    char name[32], text[64];
    for (int g = 0; g < ngroups; g++) {
        snprintf(name, sizeof name, "group%d", g);
        for (int c = 0; c < 1 + g % 3; c++) {
            nb__dlg_begin(d, g % 2 ? NB_DLG_WESNOTH : NB_DLG_FORTUNES, name);
            snprintf(text, sizeof text, "g%d c%d hello, \"there\"", g, c);
            nb__dlg_say(d, "a", text, strlen(text));
            snprintf(text, sizeof text, "g%d r%d", g, c);
            nb__dlg_say(d, "b", c % 2 ? "Yes." : text, c % 2 ? 4 : strlen(text));
            if (g % 4 == 0) nb__dlg_say(d, "a", "Yes.", 4);
            nb__dlg_end(d);
        }
    }
}

TEST(dlg_split_by_group) {
    nb__dlg d;
    nb__dlg_init(&d);
    synthetic(&d, 300);
    int64_t n, n2;
    nb__dlg_pair *p = nb__dlg_pairs(&d, 7, &n), *q = nb__dlg_pairs(&d, 7, &n2), *r = nb__dlg_pairs(&d, 8, &n2);
    CHECK(n > 600 && n == n2);
    int8_t *gs = malloc((size_t)d.ngroups);
    memset(gs, -1, (size_t)d.ngroups);
    int64_t count[3] = {0}, differ = 0;
    for (int64_t i = 0; i < n; i++) {
        int g = d.convs[p[i].conv].group;
        CHECK_MSG(gs[g] < 0 || gs[g] == p[i].split, "group %d in splits %d and %d", g, gs[g], p[i].split);
        gs[g] = p[i].split;
        count[p[i].split]++;
        CHECK(p[i].split == q[i].split); /* the same seed, the same split */
        differ += p[i].split != r[i].split;
    }
    CHECK(differ > 0); /* another seed, another split */
    CHECK_MSG(fabs(count[0] / (double)n - 0.8) < 0.03 && fabs(count[1] / (double)n - 0.1) < 0.03,
              "train %lld valid %lld test %lld", (long long)count[0], (long long)count[1], (long long)count[2]);
    free(gs);
    free(p), free(q), free(r);
    nb__dlg_free(&d);
}

TEST(dlg_csv_round_trip_and_distractors) {
    nb__dlg d;
    nb__dlg_init(&d);
    synthetic(&d, 300);
    int64_t n;
    nb__dlg_pair *p = nb__dlg_pairs(&d, 3, &n);
    for (int split = 0; split < 3; split++) {
        size_t len;
        char *csv = nb__dlg_csv(&d, p, n, split, 3, &len);
        CHECK_MSG(csv != NULL, "%s", nb_errmsg());
        if (!csv) continue;
        CHECK(len == strlen(csv));
        nb_dialogue *t = nb_dialogue_parse(csv, len, "corpus.csv");
        CHECK_MSG(t != NULL, "%s", nb_errmsg());
        int64_t ns = 0;
        for (int64_t i = 0; i < n; i++) ns += p[i].split == split;
        if (t && split == 0) {
            /* every pair twice: with its response (1) and another one (0) */
            CHECK(t->ncand == 1 && t->n == 2 * ns);
            int64_t ones = 0;
            for (int64_t i = 0; i < t->n; i++) ones += t->label[i];
            CHECK(ones == ns);
        }
        if (t && split > 0) {
            CHECK(t->ncand == 10 && t->n == ns);
            for (int64_t i = 0; i < t->n; i++)
                for (int a = 0; a < 10; a++)
                    for (int b = a + 1; b < 10; b++)
                        CHECK(strcmp(t->cand[i * 10 + a], t->cand[i * 10 + b]) != 0);
        }
        /* the fields come back as written: the contexts and the true responses of the split */
        for (int64_t i = 0, row = 0; t && i < n && split > 0; i++) {
            if (p[i].split != split) continue;
            char *ctx = nb__dlg_context(&d, &p[i]);
            CHECK(!strcmp(t->context[row], ctx));
            CHECK(!strcmp(t->cand[row * 10], nb__dlg_response(&d, &p[i])));
            free(ctx);
            row++;
        }
        if (t && split == 0) {
            for (int64_t i = 0; i < t->n; i++) {
                /* a label-0 row's response differs from the true one of its context */
                if (t->label[i]) continue;
                bool truth = false;
                for (int64_t k = 0; k < n && !truth; k++) {
                    if (p[k].split) continue;
                    char *ctx = nb__dlg_context(&d, &p[k]);
                    truth = !strcmp(ctx, t->context[i]) && !strcmp(nb__dlg_response(&d, &p[k]), t->cand[i]);
                    free(ctx);
                }
                CHECK(!truth);
            }
        }
        nb_dialogue_free(t);
        free(csv);
    }
    free(p);
    nb__dlg_free(&d);
}

TEST(dlg_csv_field_quoting) {
    nb__sbuf b = {0};
    nb__csv_field(&b, "plain");
    nb__sbuf_put(&b, ",", 1);
    nb__csv_field(&b, "a, \"b\"");
    nb__sbuf_put(&b, ",", 1);
    nb__csv_field(&b, "\"");
    CHECK_MSG(!strcmp(b.p, "plain,\"a, \"\"b\"\"\",\"\"\"\""), "%s", b.p);
    free(b.p);
}

TEST(dlg_too_few_responses_is_an_error) {
    nb__dlg d;
    nb__dlg_init(&d);
    nb__dlg_begin(&d, NB_DLG_FORTUNES, "only");
    nb__dlg_say(&d, "a", "hi", 2);
    nb__dlg_say(&d, "b", "hello", 5);
    nb__dlg_say(&d, "a", "bye", 3);
    nb__dlg_end(&d);
    int64_t n;
    nb__dlg_pair *p = nb__dlg_pairs(&d, 1, &n);
    CHECK(n == 2 && p[0].split == 0 && p[1].split == 0);
    size_t len;
    char *csv = nb__dlg_csv(&d, p, n, 0, 1, &len); /* two different responses: a wrong one exists */
    CHECK(csv != NULL);
    free(csv);
    csv = nb__dlg_csv(&d, p, n, 1, 1, &len); /* an empty split: the header only */
    CHECK(csv && !strncmp(csv, "Context,Ground Truth Utterance,Distractor_0", 43) && strchr(csv, '\n')[1] == 0);
    free(csv);
    for (int64_t i = 0; i < n; i++) p[i].split = 2;
    CHECK(nb__dlg_csv(&d, p, n, 2, 1, &len) == NULL);
    CHECK_MSG(strstr(nb_errmsg(), "too few different responses"), "%s", nb_errmsg());
    free(p);
    nb__dlg_free(&d);
}

/* A test split of 600 pairs whose responses are one line said 591 times and
 * nine others, ten different in all, just enough: most draws of a distractor
 * miss, so the drawing falls back to counting the pairs that qualify. Every
 * row still gets nine distractors, all different from each other and from
 * its truth; with eight others it is an error, found in one pass. */
TEST(dlg_distractors_from_few_different_responses) {
    for (int others = 9; others >= 8; others--) {
        nb__dlg d;
        nb__dlg_init(&d);
        for (int i = 0; i < 600; i++) {
            char g[32], ctx[32], resp[32];
            snprintf(g, sizeof g, "g%d", i);
            snprintf(ctx, sizeof ctx, "question %d", i);
            if (i < others) snprintf(resp, sizeof resp, "answer %d", i);
            else snprintf(resp, sizeof resp, "the same answer");
            nb__dlg_begin(&d, NB_DLG_FORTUNES, g);
            nb__dlg_say(&d, "a", ctx, strlen(ctx));
            nb__dlg_say(&d, "b", resp, strlen(resp));
            nb__dlg_end(&d);
        }
        int64_t n;
        nb__dlg_pair *p = nb__dlg_pairs(&d, 1, &n);
        CHECK(n == 600);
        for (int64_t i = 0; i < n; i++) p[i].split = 2;
        size_t len;
        char *csv = nb__dlg_csv(&d, p, n, 2, 5, &len);
        if (others == 8) {
            CHECK(csv == NULL && strstr(nb_errmsg(), "too few different responses"));
        } else {
            CHECK_MSG(csv != NULL, "%s", nb_errmsg());
            nb_dialogue *t = csv ? nb_dialogue_parse(csv, len, "few.csv") : NULL;
            CHECK(t && t->n == 600 && t->ncand == 10);
            int bad = 0;
            for (int64_t r = 0; t && r < t->n; r++)
                for (int a = 0; a < 10; a++)
                    for (int b = a + 1; b < 10; b++) bad += !strcmp(t->cand[r * 10 + a], t->cand[r * 10 + b]);
            CHECK_MSG(bad == 0, "%d pairs of equal candidates in a row", bad);
            nb_dialogue_free(t);
        }
        free(csv);
        free(p);
        nb__dlg_free(&d);
    }
}

TEST(dlg_text_cleaning) {
    nb__dlg d;
    nb__dlg_init(&d);
    nb__dlg_begin(&d, NB_DLG_FORTUNES, "g");
    const char bad[] = "  two\t\tspaces __eou__ and\n\x80 __eot__ bytes\xC3  ";
    nb__dlg_say(&d, "a", bad, sizeof bad - 1);
    nb__dlg_say(&d, "b", "   ", 3); /* empty after cleaning: dropped */
    nb__dlg_say(&d, "b", "caf\xC3\xA9", 5);
    nb__dlg_end(&d);
    CHECK(d.nconvs == 1);
    if (d.nconvs == 1) {
        CHECK_MSG(!strcmp(turn(&d, 0, 0), "two spaces and ? bytes? __eou__"), "%s", turn(&d, 0, 0));
        CHECK(!strcmp(turn(&d, 0, 1), "caf\xC3\xA9 __eou__"));
    }
    nb__dlg_free(&d);
}

/* A zText testament of two chapters: block 0 holds chapter 1, block 1
 * chapter 2; verse entries of size 0 are the versification's empty slots. */
TEST(dlg_bible_ztext_quoted_verses) {
    const char *blocks[2][5] = {
        {"<chapter n=\"1\" osisID=\"Gen.1\" sID=\"Gen.1\"/>", "In the beginning.<note>a footnote \xE2\x80\x9Cno\xE2\x80\x9D</note>",
         "<w lemma=\"x\">He</w> said, \xE2\x80\x9CLet there be light &amp; air.\xE2\x80\x9D",
         "<title type=\"section\">A heading</title>They answered, \xE2\x80\x9CYes.\xE2\x80\x9D", "And it was so."},
        {"<chapter n=\"2\" osisID=\"Gen.2\" sID=\"Gen.2\"/>", "\xE2\x80\x9COne,\xE2\x80\x9D he said.",
         "\xE2\x80\x9CTwo,\xE2\x80\x9D she said.", "", ""}};
    uint8_t raw[2][1024], bzz[4096], bzs[24], bzv[200];
    size_t nz = 0, nv = 0;
    for (int b = 0; b < 2; b++) {
        size_t off = 0;
        for (int v = 0; v < 5; v++) {
            size_t n = strlen(blocks[b][v]);
            memcpy(raw[b] + off, blocks[b][v], n);
            uint8_t *e = bzv + nv;
            e[0] = (uint8_t)b, e[1] = e[2] = e[3] = 0;
            e[4] = (uint8_t)off, e[5] = (uint8_t)(off >> 8), e[6] = e[7] = 0;
            e[8] = (uint8_t)n, e[9] = 0;
            nv += 10;
            off += n;
        }
        uLongf zl = sizeof bzz - nz;
        CHECK(compress(bzz + nz, &zl, raw[b], off) == Z_OK);
        uint32_t w[3] = {(uint32_t)nz, (uint32_t)zl, (uint32_t)off};
        for (int k = 0; k < 3; k++)
            for (int j = 0; j < 4; j++) bzs[b * 12 + k * 4 + j] = (uint8_t)(w[k] >> (8 * j));
        nz += zl;
    }
    nb__dlg d;
    nb__dlg_init(&d);
    CHECK_MSG(nb__dlg_parse_ztext(&d, "ot", bzs, sizeof bzs, bzv, nv, bzz, nz) == 0, "%s", nb_errmsg());
    CHECK(d.nconvs == 2);
    if (d.nconvs == 2) {
        CHECK(d.convs[0].n == 2 && d.convs[1].n == 2);
        CHECK_MSG(!strcmp(turn(&d, 0, 0), "He said, \xE2\x80\x9CLet there be light & air.\xE2\x80\x9D __eou__"), "%s",
                  turn(&d, 0, 0));
        CHECK_MSG(!strcmp(turn(&d, 0, 1), "They answered, \xE2\x80\x9CYes.\xE2\x80\x9D __eou__"), "%s", turn(&d, 0, 1));
        CHECK(!strcmp(d.groups[d.convs[0].group], "ot:Gen.1") && !strcmp(d.groups[d.convs[1].group], "ot:Gen.2"));
    }
    /* a verse entry past its block, a block past the data: refused, nothing added */
    bzv[18] = 200;
    CHECK(nb__dlg_parse_ztext(&d, "ot", bzs, sizeof bzs, bzv, nv, bzz, nz) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "ot: verse entry 1: 200 bytes"), "%s", nb_errmsg());
    CHECK(nb__dlg_parse_ztext(&d, "ot", bzs, sizeof bzs, bzv, nv, bzz, nz - 1) == -1);
    CHECK(nb__dlg_parse_ztext(&d, "ot", bzs, sizeof bzs - 1, bzv, nv, bzz, nz) == -1);
    /* a block size its compressed bytes cannot inflate to: refused before
     * the 60 MiB are allocated */
    uint32_t big = 60u << 20;
    for (int j = 0; j < 4; j++) bzs[8 + j] = (uint8_t)(big >> (8 * j));
    CHECK(nb__dlg_parse_ztext(&d, "ot", bzs, sizeof bzs, bzv, nv, bzz, nz) == -1);
    CHECK_MSG(strstr(nb_errmsg(), "ot: block 0: 62914560 bytes uncompressed cannot come from its"), "%s", nb_errmsg());
    CHECK(d.nconvs == 2);
    nb__dlg_free(&d);
}
