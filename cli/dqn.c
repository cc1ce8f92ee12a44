/* dqn.c — `nabla dqn train|eval|play`: deep Q-learning with experience
 * replay (notes §4.3) on CartPole, 2048 and Catch from pixels; greedy
 * evaluation against a uniformly random policy; an episode drawn in the
 * terminal. */
#include "cli.h"
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EVAL_SEED 1000000 /* evaluation episodes never share seeds with training's */

/* --- reports ----------------------------------------------------------------- */

typedef struct {
    double mean, sd, min, max, mean_len;
} summary;

static summary summarize(const nb_rl_episode *ep, int n) {
    summary s = {0, 0, INFINITY, -INFINITY, 0};
    for (int i = 0; i < n; i++) {
        s.mean += ep[i].ret / n;
        s.mean_len += (double)ep[i].length / n;
        s.min = fmin(s.min, ep[i].ret);
        s.max = fmax(s.max, ep[i].ret);
    }
    for (int i = 0; i < n; i++) s.sd += (ep[i].ret - s.mean) * (ep[i].ret - s.mean) / n;
    s.sd = sqrt(s.sd);
    return s;
}

/* The greedy policy's figures next to a uniformly random legal policy's on
 * the same episode seeds; the game's own measure (caught balls, 2048 tiles,
 * CartPole episodes that reach the time limit). Human lines go to stderr,
 * JSON fields (without braces) to json when it is not NULL. */
static void report(const char *env, const nb_rl_episode *g, const nb_rl_episode *r, int n, char *json, size_t jn) {
    summary sg = summarize(g, n), sr = summarize(r, n);
    double ratio = sr.mean != 0 ? sg.mean / sr.mean : 0;
    fprintf(stderr, "%s, %d greedy episodes: mean return %.2f (sd %.2f, min %.0f, max %.0f, mean length %.1f)\n", env, n,
            sg.mean, sg.sd, sg.min, sg.max, sg.mean_len);
    fprintf(stderr, "uniformly random legal policy, same seeds: mean return %.2f (greedy / random = %.2f)\n", sr.mean,
            ratio);
    if (sg.mean < sr.mean)
        fprintf(stderr, "nabla dqn: warning: the greedy policy scores below a random one: the network has not learned "
                        "this game (train longer: --steps)\n");
    size_t off = 0;
#define J(...)                                                                            \
    do {                                                                                  \
        if (json && off < jn) off += (size_t)snprintf(json + off, jn - off, __VA_ARGS__); \
    } while (0)
    J("\"env\": \"%s\", \"episodes\": %d, \"mean_return\": %.4f, \"sd_return\": %.4f, \"min_return\": %.4f, "
      "\"max_return\": %.4f, \"mean_length\": %.2f, \"random_mean_return\": %.4f, \"ratio_to_random\": %.4f",
      env, n, sg.mean, sg.sd, sg.min, sg.max, sg.mean_len, sr.mean, ratio);
    if (!strcmp(env, "catch")) {
        int caught = 0, rc = 0;
        for (int i = 0; i < n; i++) caught += g[i].ret > 0, rc += r[i].ret > 0;
        fprintf(stderr, "caught %d of %d (%.1f%%); random policy %.1f%%\n", caught, n, 100.0 * caught / n, 100.0 * rc / n);
        J(", \"caught_fraction\": %.4f", (double)caught / n);
    } else if (!strcmp(env, "cartpole")) {
        int full = 0;
        for (int i = 0; i < n; i++) full += g[i].truncated;
        fprintf(stderr, "balanced for all 500 steps in %d of %d episodes\n", full, n);
        J(", \"full_episodes_fraction\": %.4f", (double)full / n);
    } else {
        /* The distribution of the highest tile, for both policies. */
        int hg[32] = {0}, hr[32] = {0}, at512 = 0;
        for (int i = 0; i < n; i++) {
            hg[(int)log2(fmax(g[i].highest, 1)) & 31]++;
            hr[(int)log2(fmax(r[i].highest, 1)) & 31]++;
            at512 += g[i].highest >= 512;
        }
        fprintf(stderr, "highest tile   greedy  random\n");
        for (int k = 1; k < 32; k++)
            if (hg[k] || hr[k]) fprintf(stderr, "%12.0f %8d %7d\n", ldexp(1, k), hg[k], hr[k]);
        fprintf(stderr, "512 or more in %d of %d games (%.0f%%)\n", at512, n, 100.0 * at512 / n);
        J(", \"reached_512_fraction\": %.4f, \"highest_tile\": {", (double)at512 / n);
        bool first = true;
        for (int k = 1; k < 32; k++)
            if (hg[k]) {
                J("%s\"%.0f\": %d", first ? "" : ", ", ldexp(1, k), hg[k]);
                first = false;
            }
        J("}");
    }
#undef J
}

/* Greedy and random evaluation on the same seeds, then the report. */
static int evaluate(const char *cmd, nb_net *q, const char *env, int episodes, uint64_t seed, double eps, char *json,
                    size_t jn) {
    nb_rl_episode *g = malloc(sizeof *g * (size_t)episodes), *r = malloc(sizeof *r * (size_t)episodes);
    int rc = 0;
    if (!g || !r) rc = nb_cli_fail(cmd, "out of memory for %d episodes", episodes);
    else if (nb_dqn_evaluate(q, env, episodes, seed, eps, g) || nb_dqn_evaluate(NULL, env, episodes, seed, 0, r))
        rc = nb_cli_fail(cmd, "%s", nb_errmsg());
    else report(env, g, r, episodes, json, jn);
    free(g);
    free(r);
    return rc;
}

/* --- train ------------------------------------------------------------------- */

/* The running window of the last 100 training episodes' returns. */
typedef struct {
    double ret[100], sum;
    int64_t episodes;
} window;

static double window_mean(const window *w);

static double window_add(window *w, double ret) {
    int k = (int)(w->episodes % 100);
    w->sum += ret - w->ret[k];
    w->ret[k] = ret;
    w->episodes++;
    return window_mean(w);
}

static double window_mean(const window *w) {
    return w->episodes ? w->sum / (double)(w->episodes < 100 ? w->episodes : 100) : 0;
}

/* Writes the model; with state (a run not yet over), as a checkpoint that
 * --resume continues, the window of returns included. 0, or -1 with
 * nb_errmsg(). */
static int save(nb_dqn *d, const char *out, const window *w, bool state) {
    if (!out) return 0;
    nb_param *params;
    const char **names;
    int np = nb_net_params(nb_dqn_net(d), &params);
    nb_net_param_names(nb_dqn_net(d), &names);
    if (nb_cli_check_weights(params, np, names, nb_dqn_steps(d))) return -1;
    char e[32], m[32], last[100 * 26];
    snprintf(e, sizeof e, "%lld", (long long)w->episodes);
    snprintf(m, sizeof m, "%.6g", window_mean(w));
    size_t off = 0;
    for (int i = 0; i < 100; i++) off += (size_t)snprintf(last + off, sizeof last - off, i ? " %.17g" : "%.17g", w->ret[i]);
    const char *keys[] = {"nabla.dqn.episodes", "nabla.dqn.mean100", "nabla.dqn.last100"}, *vals[] = {e, m, last};
    return state ? nb_dqn_checkpoint(d, out, keys, vals, 3) : nb_dqn_save(d, out, keys, vals, 2);
}

/* The window as a checkpoint stored it. */
static int window_read(const nb_safetensors *st, const char *path, window *w) {
    const char *e = nb_st_meta(st, "nabla.dqn.episodes"), *s = nb_st_meta(st, "nabla.dqn.last100");
    char *end;
    *w = (window){{0}, 0, 0};
    if (!e || !s || (w->episodes = strtoll(e, &end, 10)) < 0 || *end)
        return nb_error("%s: the checkpoint's episode count or last100 is missing or malformed", path);
    for (int i = 0; i < 100; i++) {
        w->ret[i] = strtod(s, &end);
        if (end == s || (i < 99 && *end != ' ') || (i == 99 && *end)) return nb_error("%s: 'nabla.dqn.last100' is malformed", path);
        /* strtod reads "nan" and "inf": one such return would make every
         * later mean100 (and the log) nan or inf for 100 episodes. */
        if (!isfinite(w->ret[i])) {
            const char *v = s + strspn(s, " ");
            return nb_error("%s: 'nabla.dqn.last100' value %d is '%.*s', expected a finite episode return", path, i + 1,
                            (int)(end - v), v);
        }
        s = end;
    }
    int64_t n = w->episodes < 100 ? w->episodes : 100;
    for (int i = 0; i < n; i++) w->sum += w->ret[i];
    return 0;
}

/* The per-game defaults, for --help: each game has its tuned preset. */
static void preset_text(char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "Deep Q-learning with experience replay (notes §4.3). A flag left out takes the game's "
                                        "preset:");
    const char *envs[3] = {"cartpole", "catch", "2048"};
    for (int e = 0; e < 3 && k < n; e++) {
        nb_dqn_opts d;
        nb_dqn_defaults(envs[e], &d);
        k += (size_t)snprintf(buf + k, n - k,
                              "\n  %-8s --steps %lld --lr %g --lr-end %g --gamma %g --buffer %lld --batch %lld --epsilon-end %g "
                              "--epsilon-steps %lld\n           --target-every %lld --loss %s --learn-start %lld "
                              "--train-every %lld --reward %s --reward-scale %g\n           --grad-clip %g --%sdouble "
                              "--%saugment --select-every %lld --select-episodes %lld",
                              envs[e], (long long)d.steps, d.lr, d.lr_end, d.gamma, (long long)d.buffer, (long long)d.batch,
                              d.eps_end, (long long)d.eps_steps, (long long)d.target_every, d.huber ? "huber" : "squared",
                              (long long)d.learn_start, (long long)d.train_every, d.reward_log ? "log" : "raw",
                              d.reward_scale, d.grad_clip, d.double_q ? "" : "no-", d.augment ? "" : "no-",
                              (long long)d.select_every, (long long)d.select_episodes);
    }
}

static int train_run(const char *cmd, const char *resume, const char *env, const nb_dqn_opts *opts, const char *cfg,
                     const char *out, const char *log, long eval_episodes, bool json);

static int train(int argc, char **argv) {
    const char *cmd = "dqn train";
    /* Flags left out take the game's tuned preset (.given says which were set). */
    long steps = 0, seed = 1, buffer = 0, batch = 0, eps_steps = 0, target_every = 0, learn_start = 0, train_every = 0,
         select_every = 0, select_episodes = 0, eval_episodes = 100, threads = 0;
    double lr = 0, lr_end = 0, gamma = 0, eps_start = 1, eps_end = 0, reward_scale = 0, grad_clip = 0;
    const char *out = NULL, *log = NULL, *loss = "squared", *netfile = NULL, *reward = "raw", *resume = NULL;
    bool dbl = false, augment = false, json = false;
#define PRESET .def = "per game"
    nb_flag flags[] = {
        {"--steps", NB_FLAG_INT, &steps, "environment steps (0 writes the initial model)", .range = "[0, inf)", PRESET},
        NB_FLAG_SEED(&seed, "initialization, exploration, replay sampling and training episodes"),
        {"--lr", NB_FLAG_FLOAT, &lr, "Adam learning rate", .range = "(0, inf)", PRESET},
        {"--lr-end", NB_FLAG_FLOAT, &lr_end, "the rate follows a cosine down to this at the last step", .range = "[0, inf)",
         PRESET},
        {"--gamma", NB_FLAG_FLOAT, &gamma, "discount of eq. 28", .range = "[0, 1)", PRESET},
        {"--buffer", NB_FLAG_INT, &buffer, "replay memory capacity in transitions", .range = "[1, inf)", PRESET},
        {"--batch", NB_FLAG_INT, &batch, "minibatch size", .range = "[1, 4096]", PRESET},
        {"--epsilon-start", NB_FLAG_FLOAT, &eps_start, "exploration at step 0", .range = "[0, 1]"},
        {"--epsilon-end", NB_FLAG_FLOAT, &eps_end, "exploration after the decay", .range = "[0, 1]", PRESET},
        {"--epsilon-steps", NB_FLAG_INT, &eps_steps, "steps of the linear decay", .range = "[0, inf)", PRESET},
        {"--target-every", NB_FLAG_INT, &target_every, "steps between target-network copies; 0: no target network",
         .range = "[0, inf)", PRESET},
        {"--loss", NB_FLAG_CHOICE, &loss, "squared: 1/2 [r + gamma max Q(s',a') - Q(s,a)]^2, or huber",
         .range = "squared|huber", PRESET},
        {"--learn-start", NB_FLAG_INT, &learn_start, "transitions stored before the first update", .range = "[0, inf)",
         PRESET},
        {"--train-every", NB_FLAG_INT, &train_every, "environment steps per update", .range = "[1, inf)", PRESET},
        {"--reward-scale", NB_FLAG_FLOAT, &reward_scale, "rewards are multiplied by this for learning",
         .range = "(0, inf)", PRESET},
        {"--reward", NB_FLAG_CHOICE, &reward, "raw, or log: learn from sign(r) log2(1 + |r|)", .range = "raw|log", PRESET},
        {"--grad-clip", NB_FLAG_FLOAT, &grad_clip, "clip gradients to this global L2 norm; 0: none", .range = "[0, inf)",
         PRESET},
        {"--double", NB_FLAG_BOOL, &dbl, "Double DQN targets", PRESET},
        {"--augment", NB_FLAG_BOOL, &augment, "train on random symmetries of the game", PRESET},
        {"--select-every", NB_FLAG_INT, &select_every, "keep the weights that play best on held-out episodes, checked "
                                                       "every N steps; 0: keep the last weights", .range = "[0, inf)",
         PRESET},
        {"--select-episodes", NB_FLAG_INT, &select_episodes, "held-out episodes of each such check", .range = "[1, 100000]",
         PRESET},
        {"--net", NB_FLAG_STR, &netfile, "Q-network description instead of the built-in one", .meta = "NET.cfg"},
        NB_FLAG_RESUME(&resume, "; the run keeps its settings"),
        {"--episodes", NB_FLAG_INT, &eval_episodes, "greedy evaluation episodes played after training; 0: none",
         .range = "[0, 100000]"},
        NB_FLAG_THREADS(&threads, "1 (a step is a chain of tiny kernels)"),
        NB_FLAG_MODEL_OUT(&out, "model file, rewritten atomically at every tenth of the run"),
        NB_FLAG_LOG(&log, "CSV log, one row per episode (see nabla plot)"),
        NB_FLAG_JSON(&json),
    };
#undef PRESET
    char about[2048];
    preset_text(about, sizeof about);
    nb_cli c = {.cmd = cmd, .args = "cartpole|2048|catch ", .about = about, .flags = flags,
                .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 0, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if (!resume && npos != 1) return nb_cli_usage_error(&c, "expected the game: cartpole, 2048 or catch (or --resume MODEL)");
    if (resume) {
        /* The run goes on exactly as it began: its settings are the checkpoint's. */
        static const char *const free_flags[] = {"--resume", "--out", "--log", "--episodes", "--threads", "--json"};
        for (int i = 0; i < c.nflags; i++) {
            bool allowed = false;
            for (size_t k = 0; k < sizeof free_flags / sizeof *free_flags; k++) allowed |= !strcmp(flags[i].name, free_flags[k]);
            if (flags[i].given && !allowed)
                return nb_cli_usage_error(&c, "%s: a resumed run keeps the settings it began with; with --resume give "
                                              "only --out, --log, --episodes, --threads or --json", flags[i].name);
        }
        nb_cli_threads(cmd, threads, 1);
        return train_run(cmd, resume, npos ? pos[0] : NULL, NULL, NULL, out ? out : resume, log, eval_episodes, json);
    }
    const char *env = pos[0];
    nb_dqn_opts o;
    if (nb_dqn_defaults(env, &o)) return nb_cli_fail(cmd, "%s", nb_errmsg());
#define GIVEN(name) nb_cli_flag(&c, name)->given
    if (GIVEN("--steps")) o.steps = steps;
    if (GIVEN("--buffer")) o.buffer = buffer;
    if (GIVEN("--batch")) o.batch = batch;
    if (GIVEN("--epsilon-steps")) o.eps_steps = eps_steps;
    if (GIVEN("--target-every")) o.target_every = target_every;
    if (GIVEN("--learn-start")) o.learn_start = learn_start;
    if (GIVEN("--train-every")) o.train_every = train_every;
    if (GIVEN("--select-every")) o.select_every = select_every;
    if (GIVEN("--select-episodes")) o.select_episodes = select_episodes;
    if (GIVEN("--lr")) o.lr = lr;
    if (GIVEN("--lr-end")) o.lr_end = lr_end;
    else if (GIVEN("--lr")) o.lr_end = o.lr_end > 0 ? fmin(o.lr_end, o.lr) : 0; /* a new --lr keeps a decay's end below it */
    if (GIVEN("--gamma")) o.gamma = gamma;
    if (GIVEN("--epsilon-start")) o.eps_start = eps_start;
    if (GIVEN("--epsilon-end")) o.eps_end = eps_end;
    if (GIVEN("--reward-scale")) o.reward_scale = reward_scale;
    if (GIVEN("--grad-clip")) o.grad_clip = grad_clip;
    if (GIVEN("--loss")) o.huber = !strcmp(loss, "huber");
    if (GIVEN("--reward")) o.reward_log = !strcmp(reward, "log");
    if (GIVEN("--double")) o.double_q = dbl;
    if (GIVEN("--augment")) o.augment = augment;
#undef GIVEN
    o.seed = (uint64_t)seed;
    nb_cli_threads(cmd, threads, 1);
    char *cfg = NULL;
    if (netfile) {
        size_t len;
        cfg = (char *)nb_read_file(netfile, &len);
        if (!cfg) return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    int rc = train_run(cmd, NULL, env, &o, cfg, out, log, eval_episodes, json);
    free(cfg);
    return rc;
}

/* A run on the training driver (train_loop.c): its step is one
 * environment step (and the update that may follow), its report every
 * tenth of the run a line of the training episodes' figures; the greedy
 * evaluation comes after the run. */
typedef struct {
    nb_cli_loop loop;
    nb_dqn *d;
    window w;
    double mean100;  /* of the last 100 training episodes */
    bool is2048;
    nb_cli_log csv;  /* one row per finished episode */
} trainer;

/* The figures of the bar and of the report's line. */
static void figures(const trainer *t, char *buf, size_t n) {
    const nb_cli_loop *L = &t->loop;
    double sps = (double)(L->step - L->first) / fmax(nb_cli_now() - L->t0, 1e-9);
    snprintf(buf, n, "episodes %lld  mean100 %.1f  eps %.3f  %.0f steps/s", (long long)t->w.episodes, t->mean100,
             nb_dqn_epsilon(t->d), sps);
}

static int take_step(void *ctx, double *loss) {
    trainer *t = ctx;
    nb_rl_episode ep;
    int st = nb_dqn_step(t->d, &ep);
    if (st < 0) return nb_error("%s; no checkpoint was written", nb_errmsg());
    if (st) {
        t->mean100 = window_add(&t->w, ep.ret); /* mean return of the last 100 episodes */
        char row[192];
        int m = snprintf(row, sizeof row, "%lld,%lld,%.6g,%.6g,%.4f,%.6g", (long long)t->loop.step + 1,
                         (long long)t->w.episodes, ep.ret, t->mean100, nb_dqn_epsilon(t->d), nb_dqn_td_error(t->d));
        if (t->is2048) snprintf(row + m, sizeof row - (size_t)m, ",%.0f", ep.highest);
        nb_cli_log_add(&t->csv, row);
    }
    *loss = 0; /* the TD errors are the log's */
    return 0;
}

static int report_tenth(void *ctx, bool cadence) {
    trainer *t = ctx;
    const nb_cli_loop *L = &t->loop;
    if (L->step == L->first) return 0; /* --steps 0: nothing to report */
    char extra[160];
    figures(t, extra, sizeof extra);
    fprintf(stderr, "step %lld/%lld: %s\n", (long long)L->step, (long long)L->max_steps, extra);
    return 0;
}

/* Every tenth of the run a checkpoint of the whole learner; at the end the
 * model alone. */
static int save_cb(void *ctx, double seconds, bool final) {
    trainer *t = ctx;
    return save(t->d, t->loop.out, &t->w, !final);
}

static void progress(void *ctx, double loss, char *extra, size_t n) { figures(ctx, extra, n); }

static void interrupted(void *ctx) {
    const nb_cli_loop *L = &((trainer *)ctx)->loop;
    if (L->out) fprintf(stderr, "nabla %s: step %lld of %lld done\n", L->cmd, (long long)L->step, (long long)L->max_steps);
}

/* Trains a new learner (env, o, cfg) or the one a checkpoint holds (resume). */
static int train_run(const char *cmd, const char *resume, const char *env, const nb_dqn_opts *opts, const char *cfg,
                     const char *out, const char *log, long eval_episodes, bool json) {
    trainer t = {.w = {{0}, 0, 0}};
    nb_dqn *d;
    char envbuf[32];
    if (resume) {
        nb_safetensors *st;
        if (!(d = nb_dqn_resume(resume, &st))) return nb_cli_fail(cmd, "%s", nb_errmsg());
        snprintf(envbuf, sizeof envbuf, "%s", nb_st_meta(st, "nabla.dqn.env"));
        int bad = window_read(st, resume, &t.w);
        nb_st_free(st);
        if (bad || (env && strcmp(env, envbuf))) {
            if (!bad) nb_error("%s: the checkpoint trains %s, not %s", resume, envbuf, env);
            nb_dqn_free(d);
            return nb_cli_fail(cmd, "%s", nb_errmsg());
        }
        env = envbuf;
    } else if (!(d = nb_dqn_new(env, opts, cfg))) {
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    nb_dqn_opts o = *nb_dqn_options(d);
    int64_t start = nb_dqn_steps(d);
    t.d = d;
    t.is2048 = !strcmp(env, "2048");
    if (!json)
        fprintf(stderr, "dqn %s: %lld steps, lr %g%s, gamma %g, batch %lld, buffer %lld, epsilon %g -> %g over %lld steps, "
                        "target every %lld, %s loss%s%s%s\n",
                env, (long long)o.steps, o.lr, o.lr_end > 0 && o.lr_end < o.lr ? " (cosine decay)" : "", o.gamma, (long long)o.batch, (long long)o.buffer, o.eps_start, o.eps_end,
                (long long)o.eps_steps, (long long)o.target_every, o.huber ? "huber" : "squared",
                o.double_q ? ", double DQN" : "", o.augment ? ", symmetry augmentation" : "",
                o.reward_log ? ", log rewards" : "");

    /* one row per finished episode; resuming, the rows of the steps the
     * checkpoint holds (a later save of the log may have added rows past it) */
    const char *header = t.is2048 ? "step,episode,return,mean100,epsilon,td_error,highest"
                                  : "step,episode,return,mean100,epsilon,td_error";
    if (nb_cli_log_open(&t.csv, log, header, resume != NULL, 1, start)) {
        nb_cli_log_free(&t.csv);
        nb_dqn_free(d);
        return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    if (resume)
        fprintf(stderr, "resuming %s at step %lld of %lld (%lld episodes)\n", resume, (long long)start, (long long)o.steps,
                (long long)t.w.episodes);
    t.mean100 = window_mean(&t.w);
    /* the command alone on its line, so that it can be pasted as it is */
    char again[2048];
    nb_cli_resume_command(again, sizeof again, "dqn train", NULL, 0, out, "--log", log, NULL);
    nb_cli_loop *L = &t.loop;
    *L = (nb_cli_loop){.cmd = cmd, .label = "dqn", .unit = "", .loss_scale = 1, .out = out, .again = again,
                       .step = start, .max_steps = o.steps, .eval_every = o.steps >= 10 ? o.steps / 10 : 1,
                       .loss_share = 1, .csv = &t.csv, .ctx = &t, .take_step = take_step, .save = save_cb,
                       .report = report_tenth, .progress = progress, .interrupted = interrupted};
    nb_cli_catch_interrupts();
    /* A signal during the last step lets the run finish as one never
     * interrupted: the final save writes the finished model, which a
     * learner checkpoint would overwrite. */
    int rc = nb_cli_loop_run(L);
    double seconds = nb_cli_now() - L->t0;
    if (!rc) {
        fprintf(stderr, "trained %lld steps (%lld episodes, %lld updates) in %.1f s, %.0f steps/s; mean return of the "
                        "last 100 episodes %.2f%s%s\n",
                (long long)(o.steps - start), (long long)t.w.episodes, (long long)nb_dqn_updates(d), seconds,
                (o.steps - start) / fmax(seconds, 1e-9), t.mean100, out ? "; model: " : "", out ? out : "");
        if (o.select_every > 0 && nb_dqn_updates(d) > 0)
            fprintf(stderr, "kept the weights of step %lld, which scored %.2f on %lld held-out episodes\n",
                    (long long)nb_dqn_selected_step(d), nb_dqn_selected_return(d), (long long)o.select_episodes);
        if (nb_dqn_updates(d) == 0)
            nb_cli_warn(cmd, "no learning update happened: the first comes after --learn-start %lld transitions and "
                             "this run had %lld steps, so the model is the untrained network (raise --steps)",
                        (long long)o.learn_start, (long long)o.steps);
        char ev[2048] = "";
        if (eval_episodes > 0) rc = evaluate(cmd, nb_dqn_net(d), env, (int)eval_episodes, EVAL_SEED, 0, ev, sizeof ev);
        if (!rc && json) {
            printf("{\"steps\": %lld, \"train_episodes\": %lld, \"updates\": %lld, \"seconds\": %.3f, "
                   "\"steps_per_second\": %.1f, \"train_mean100\": %.4f",
                   (long long)o.steps, (long long)t.w.episodes, (long long)nb_dqn_updates(d), seconds,
                   (o.steps - start) / fmax(seconds, 1e-9), t.mean100);
            if (o.select_every > 0 && nb_dqn_updates(d) > 0)
                printf(", \"selected_step\": %lld, \"selected_return\": %.4f", (long long)nb_dqn_selected_step(d),
                       nb_dqn_selected_return(d));
            if (*ev) printf(", %s", ev);
            else printf(", \"env\": \"%s\"", env);
            printf("}\n");
        }
    }
    nb_cli_log_free(&t.csv);
    nb_dqn_free(d);
    return rc;
}

/* --- eval and play ----------------------------------------------------------- */

/* Evaluation seeds stay below NB_DQN_VALIDATION_SEED (2^62), so that they
 * meet neither training's episodes (bit 63 set) nor the held-out ones that
 * pick the kept weights. */
#define SEED_RANGE "[0, 4611686018427387903]"

static int eval(int argc, char **argv) {
    const char *cmd = "dqn eval";
    long episodes = 100, seed = EVAL_SEED, threads = 0;
    double eps = 0;
    bool json = false;
    nb_flag flags[] = {
        {"--episodes", NB_FLAG_INT, &episodes, "episodes to play", .range = "[1, 100000]"},
        {"--seed", NB_FLAG_INT, &seed, "seed of the first episode; the i-th uses seed + i (the default keeps clear of the seeds training plays)",
         .range = SEED_RANGE},
        {"--epsilon", NB_FLAG_FLOAT, &eps, "probability of a random action; 0: greedy", .range = "[0, 1]"},
        NB_FLAG_THREADS(&threads, "1"),
        NB_FLAG_JSON(&json),
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL ", .about = "Plays the model's greedy policy and a uniformly random one on the "
                                                       "same episode seeds.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    if ((uint64_t)seed + (uint64_t)episodes > (uint64_t)NB_DQN_VALIDATION_SEED)
        return nb_cli_usage_error(&c, "--seed %ld: seed + --episodes must stay below 2^62 (the held-out seeds)", seed);
    nb_cli_threads(cmd, threads, 1);
    char env[32];
    nb_net *q = nb_dqn_load(pos[0], env, sizeof env);
    if (!q) return nb_cli_fail(cmd, "%s", nb_errmsg());
    char ev[2048] = "";
    int rc = evaluate(cmd, q, env, (int)episodes, (uint64_t)seed, eps, ev, sizeof ev);
    if (!rc && json) printf("{%s}\n", ev);
    nb_net_free(q);
    return rc;
}

static void sleep_ms(long ms) {
    if (ms <= 0) return;
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

static int play(int argc, char **argv) {
    const char *cmd = "dqn play";
    long seed = EVAL_SEED, delay = -1;
    double eps = 0;
    nb_flag flags[] = {
        {"--seed", NB_FLAG_INT, &seed, "the episode's seed (the first of dqn eval)", .range = SEED_RANGE},
        {"--delay", NB_FLAG_INT, &delay, "milliseconds between frames", .range = "[0, 10000]",
         .def = "on a terminal cartpole 20, others 150; else 0"},
        {"--epsilon", NB_FLAG_FLOAT, &eps, "probability of a random action; 0: greedy", .range = "[0, 1]"},
    };
    nb_cli c = {.cmd = cmd, .args = "MODEL ", .about = "Draws one episode of the model's policy in the terminal.",
                .flags = flags, .nflags = (int)(sizeof flags / sizeof flags[0]), .min_pos = 1, .max_pos = 1};
    const char *pos[1];
    int npos, prc = nb_cli_parse(&c, argc, argv, pos, &npos);
    if (prc != NB_CLI_OK) return prc;
    char name[32];
    nb_net *q = nb_dqn_load(pos[0], name, sizeof name);
    if (!q) return nb_cli_fail(cmd, "%s", nb_errmsg());
    nb_set_threads(1); /* one observation at a time: threads would only wait */
    nb_env *e = nb_env_new(name);
    bool tty = nb_cli_tty() && isatty(1);
    if (delay < 0) delay = tty ? (!strcmp(name, "cartpole") ? 20 : 150) : 0;
    nb_env_reset(e, (uint64_t)seed);
    nb_rng r;
    nb_rng_seed(&r, (uint64_t)seed, 5);
    int na = nb_env_actions(e);
    float *obs = nb__xmalloc("an observation", (size_t)nb_env_obs_size(e), sizeof(float));
    bool legal[64];
    char frame[4096];
    double ret = 0;
    int64_t t = 0;
    const char *last = "";
    for (;;) {
        nb_env_render(e, frame, sizeof frame);
        if (tty) printf("\033[H\033[2J");
        printf("%s  t %lld  return %.0f  %s\n%s", name, (long long)t, ret, last, frame);
        if (!tty) printf("\n");
        fflush(stdout);
        if (nb_env_done(e)) break;
        sleep_ms(delay);
        nb_env_observe(e, obs);
        nb_env_legal(e, legal);
        int a;
        if (eps > 0 && nb_rng_uniform(&r) < eps) {
            int n = 0, pick;
            for (int k = 0; k < na; k++) n += legal[k];
            pick = (int)nb_rng_below(&r, (uint32_t)(n ? n : 1));
            for (a = 0; a < na && !(legal[a] && pick-- == 0); a++) {}
            if (a == na) a = 0;
        } else {
            a = nb_dqn_act(q, obs, legal, na);
        }
        nb_arena_reset();
        ret += nb_env_step(e, a, NULL, NULL);
        last = nb_env_action_name(e, a);
        t++;
    }
    fprintf(stderr, "%s: return %.0f after %lld steps\n", name, ret, (long long)t);
    free(obs);
    nb_env_free(e);
    nb_net_free(q);
    return 0;
}

static int cmd_dqn(int argc, char **argv) {
    static const nb_verb verbs[] = {
        {"train", train, "train a Q-network on cartpole, 2048 or catch (deep Q-learning, notes §4.3)"},
        {"eval", eval, "the greedy policy's returns against a random policy's"},
        {"play", play, "watch an episode in the terminal"},
    };
    return nb_cli_verbs("dqn", verbs, 3, argc, argv);
}

NB_COMMAND("dqn", cmd_dqn, "deep Q-learning: train, eval, play (cartpole, 2048, catch)")
