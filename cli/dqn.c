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

static const char *TRAIN_SYNOPSIS =
    "train cartpole|2048|catch [--steps N] [--seed S] [--lr X] [--lr-end X] [--gamma G] [--buffer N] [--batch B]\n"
    "       [--epsilon-start 1 --epsilon-end 0.1 --epsilon-steps N] [--target-every N] [--loss huber|squared]\n"
    "       [--learn-start N] [--train-every K] [--reward-scale X] [--reward raw|log] [--grad-clip X]\n"
    "       [--double on|off] [--augment on|off] [--net NET.cfg]\n"
    "       [--eval-episodes N] [--out MODEL] [--log LOG.csv] [--json]";

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

/* CSV rows kept in memory; the file is rewritten whole, atomically. */
typedef struct {
    char *buf;
    size_t len, cap;
} textbuf;

static void tb_add(textbuf *t, const char *s) {
    size_t n = strlen(s);
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + n + 1) cap *= 2;
        char *b = realloc(t->buf, cap);
        if (!b) nb_fatal("dqn", "out of memory for the log");
        t->buf = b;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n + 1);
    t->len += n;
}

static int save(const char *cmd, nb_dqn *d, const char *out, int64_t episodes, double mean100) {
    if (!out) return 0;
    char e[32], m[32];
    snprintf(e, sizeof e, "%lld", (long long)episodes);
    snprintf(m, sizeof m, "%.6g", mean100);
    const char *keys[] = {"nabla.dqn.episodes", "nabla.dqn.mean100"}, *vals[] = {e, m};
    if (nb_dqn_save(d, out, keys, vals, 2)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    return 0;
}

static int train(int argc, char **argv) {
    const char *cmd = "dqn train";
    /* Flags left unset take the environment's tuned defaults. */
    long steps = LONG_MIN, seed = 1, buffer = LONG_MIN, batch = LONG_MIN, eps_steps = LONG_MIN, target_every = LONG_MIN,
         learn_start = LONG_MIN, train_every = LONG_MIN, eval_episodes = 100, threads = 1;
    double lr = NAN, lr_end = NAN, gamma = NAN, eps_start = NAN, eps_end = NAN, reward_scale = NAN, grad_clip = NAN;
    const char *out = NULL, *log = NULL, *loss = NULL, *netfile = NULL, *reward = NULL, *dbl = NULL, *augment = NULL;
    bool json = false, help = false;
    nb_flag flags[] = {
        {"--steps", NB_FLAG_INT, &steps, "environment steps"},
        {"--seed", NB_FLAG_INT, &seed, "seed for initialization, exploration, sampling and episodes (1)"},
        {"--lr", NB_FLAG_FLOAT, &lr, "Adam learning rate"},
        {"--lr-end", NB_FLAG_FLOAT, &lr_end, "the rate follows a cosine down to this at the last step"},
        {"--gamma", NB_FLAG_FLOAT, &gamma, "discount of eq. 28"},
        {"--buffer", NB_FLAG_INT, &buffer, "replay memory capacity in transitions"},
        {"--batch", NB_FLAG_INT, &batch, "minibatch size"},
        {"--epsilon-start", NB_FLAG_FLOAT, &eps_start, "exploration at step 0 (1)"},
        {"--epsilon-end", NB_FLAG_FLOAT, &eps_end, "exploration after the decay"},
        {"--epsilon-steps", NB_FLAG_INT, &eps_steps, "steps of the linear decay"},
        {"--target-every", NB_FLAG_INT, &target_every, "steps between target-network copies (0: no target network)"},
        {"--loss", NB_FLAG_STR, &loss, "squared: 1/2 [r + gamma max Q(s',a') - Q(s,a)]^2, or huber"},
        {"--learn-start", NB_FLAG_INT, &learn_start, "transitions stored before the first update"},
        {"--train-every", NB_FLAG_INT, &train_every, "environment steps per update"},
        {"--reward-scale", NB_FLAG_FLOAT, &reward_scale, "rewards are multiplied by this for learning"},
        {"--reward", NB_FLAG_STR, &reward, "raw, or log: learn from sign(r) log2(1 + |r|)"},
        {"--grad-clip", NB_FLAG_FLOAT, &grad_clip, "maximal gradient norm (0: none)"},
        {"--double", NB_FLAG_STR, &dbl, "on or off: Double DQN targets"},
        {"--augment", NB_FLAG_STR, &augment, "on or off: train on random symmetries of the game"},
        {"--net", NB_FLAG_STR, &netfile, "Q-network description instead of the built-in one"},
        {"--eval-episodes", NB_FLAG_INT, &eval_episodes, "greedy episodes played after training (100; 0: none)"},
        {"--threads", NB_FLAG_INT, &threads, "threads (1: a step is a chain of tiny kernels; 0: NABLA_THREADS)"},
        {"--out", NB_FLAG_STR, &out, "model file, rewritten atomically at every tenth of the run"},
        {"--log", NB_FLAG_STR, &log, "CSV log, one row per episode (see nabla plot)"},
        {"--json", NB_FLAG_BOOL, &json, "print the results as one JSON line on stdout"},
        {"--help", NB_FLAG_BOOL, &help, "this help"},
    };
    int nflags = sizeof flags / sizeof flags[0], npos;
    const char *pos[1];
    if (nb_cli_parse(cmd, argc, argv, flags, nflags, pos, 1, &npos)) return 1;
    if (help || npos != 1) {
        nb_cli_usage("dqn", TRAIN_SYNOPSIS, flags, nflags);
        if (help) {
            /* The flags left out take the environment's tuned defaults. */
            printf("\ndefaults:\n");
            const char *envs[3] = {"cartpole", "catch", "2048"};
            for (int k = 0; k < 3; k++) {
                nb_dqn_opts d;
                nb_dqn_defaults(envs[k], &d);
                printf("  %-8s --steps %lld --lr %g --lr-end %g --gamma %g --buffer %lld --batch %lld --epsilon-end %g "
                       "--epsilon-steps %lld\n           --target-every %lld --loss %s --learn-start %lld --train-every %lld "
                       "--reward %s --reward-scale %g\n           --grad-clip %g --double %s --augment %s\n",
                       envs[k], (long long)d.steps, d.lr, d.lr_end, d.gamma, (long long)d.buffer, (long long)d.batch, d.eps_end,
                       (long long)d.eps_steps, (long long)d.target_every, d.huber ? "huber" : "squared",
                       (long long)d.learn_start, (long long)d.train_every, d.reward_log ? "log" : "raw", d.reward_scale,
                       d.grad_clip, d.double_q ? "on" : "off", d.augment ? "on" : "off");
            }
        }
        return help ? 0 : 1;
    }
    const char *env = pos[0];
    nb_dqn_opts o;
    if (nb_dqn_defaults(env, &o)) return nb_cli_fail(cmd, "%s", nb_errmsg());
    if (steps != LONG_MIN) o.steps = steps;
    if (buffer != LONG_MIN) o.buffer = buffer;
    if (batch != LONG_MIN) o.batch = batch;
    if (eps_steps != LONG_MIN) o.eps_steps = eps_steps;
    if (target_every != LONG_MIN) o.target_every = target_every;
    if (learn_start != LONG_MIN) o.learn_start = learn_start;
    if (train_every != LONG_MIN) o.train_every = train_every;
    if (!isnan(lr)) o.lr = lr;
    if (!isnan(lr_end)) o.lr_end = lr_end;
    else if (!isnan(lr)) o.lr_end = o.lr_end > 0 ? fmin(o.lr_end, o.lr) : 0; /* a new --lr keeps a decay's end below it */
    if (!isnan(gamma)) o.gamma = gamma;
    if (!isnan(eps_start)) o.eps_start = eps_start;
    if (!isnan(eps_end)) o.eps_end = eps_end;
    if (!isnan(reward_scale)) o.reward_scale = reward_scale;
    if (!isnan(grad_clip)) o.grad_clip = grad_clip;
    if (loss && strcmp(loss, "huber") && strcmp(loss, "squared"))
        return nb_cli_fail(cmd, "--loss: expected huber or squared, got '%s'", loss);
    if (loss) o.huber = !strcmp(loss, "huber");
    if (reward && strcmp(reward, "raw") && strcmp(reward, "log"))
        return nb_cli_fail(cmd, "--reward: expected raw or log, got '%s'", reward);
    if (reward) o.reward_log = !strcmp(reward, "log");
    const char *onoff[2] = {dbl, augment}, *onoff_name[2] = {"--double", "--augment"};
    bool *onoff_dst[2] = {&o.double_q, &o.augment};
    for (int k = 0; k < 2; k++) {
        if (!onoff[k]) continue;
        if (strcmp(onoff[k], "on") && strcmp(onoff[k], "off"))
            return nb_cli_fail(cmd, "%s: expected on or off, got '%s'", onoff_name[k], onoff[k]);
        *onoff_dst[k] = !strcmp(onoff[k], "on");
    }
    if (seed < 0) return nb_cli_fail(cmd, "--seed: expected a non-negative integer, got %ld", seed);
    if (eval_episodes < 0 || eval_episodes > 100000)
        return nb_cli_fail(cmd, "--eval-episodes: expected 0..100000, got %ld", eval_episodes);
    o.seed = (uint64_t)seed;
    nb_set_threads((int)threads);
    char *cfg = NULL;
    if (netfile) {
        size_t len;
        cfg = (char *)nb_read_file(netfile, &len);
        if (!cfg) return nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    nb_dqn *d = nb_dqn_new(env, &o, cfg);
    free(cfg);
    if (!d) return nb_cli_fail(cmd, "%s", nb_errmsg());
    bool is2048 = !strcmp(env, "2048");
    if (!json)
        fprintf(stderr, "dqn %s: %lld steps, lr %g%s, gamma %g, batch %lld, buffer %lld, epsilon %g -> %g over %lld steps, "
                        "target every %lld, %s loss%s%s%s\n",
                env, (long long)o.steps, o.lr, o.lr_end > 0 && o.lr_end < o.lr ? " (cosine decay)" : "", o.gamma, (long long)o.batch, (long long)o.buffer, o.eps_start, o.eps_end,
                (long long)o.eps_steps, (long long)o.target_every, o.huber ? "huber" : "squared",
                o.double_q ? ", double DQN" : "", o.augment ? ", symmetry augmentation" : "",
                o.reward_log ? ", log rewards" : "");

    textbuf csv = {0};
    tb_add(&csv, is2048 ? "step,episode,return,mean100,epsilon,td_error,highest\n"
                        : "step,episode,return,mean100,epsilon,td_error\n");
    double last100[100] = {0}, sum100 = 0, mean100 = 0;
    int64_t episodes = 0;
    int rc = 0;
    double t0 = nb_cli_now(), last_draw = 0;
    int64_t mark = o.steps >= 10 ? o.steps / 10 : 1;
    for (int64_t s = 0; s < o.steps; s++) {
        nb_rl_episode ep;
        if (nb_dqn_step(d, &ep)) {
            /* mean return of the last 100 episodes, a running window */
            int k = (int)(episodes % 100);
            sum100 += ep.ret - last100[k];
            last100[k] = ep.ret;
            episodes++;
            mean100 = sum100 / (double)(episodes < 100 ? episodes : 100);
            char row[192];
            int m = snprintf(row, sizeof row, "%lld,%lld,%.6g,%.6g,%.4f,%.6g", (long long)(s + 1), (long long)episodes,
                             ep.ret, mean100, nb_dqn_epsilon(d), nb_dqn_td_error(d));
            if (is2048) snprintf(row + m, sizeof row - (size_t)m, ",%.0f", ep.highest);
            tb_add(&csv, row);
            tb_add(&csv, "\n");
        }
        double now = nb_cli_now();
        bool at_mark = (s + 1) % mark == 0 || s + 1 == o.steps;
        if ((nb_cli_tty() && now - last_draw > 0.25) || at_mark) {
            char extra[160];
            double sps = (double)(s + 1) / fmax(now - t0, 1e-9);
            snprintf(extra, sizeof extra, "episodes %lld  mean100 %.1f  eps %.3f  %.0f steps/s", (long long)episodes,
                     mean100, nb_dqn_epsilon(d), sps);
            if (at_mark) {
                if (nb_cli_tty()) fprintf(stderr, "\r\033[K");
                fprintf(stderr, "step %lld/%lld: %s\n", (long long)(s + 1), (long long)o.steps, extra);
                if (save(cmd, d, out, episodes, mean100)) {
                    rc = 1;
                    break;
                }
                if (log && nb_write_file_atomic(log, csv.buf, csv.len)) {
                    rc = nb_cli_fail(cmd, "%s", nb_errmsg());
                    break;
                }
            } else {
                nb_cli_progress("dqn", s + 1, o.steps, now - t0, extra, false);
            }
            last_draw = now;
        }
    }
    double seconds = nb_cli_now() - t0;
    if (!rc && o.steps == 0) { /* nothing trained: still leave the files asked for */
        if (save(cmd, d, out, 0, 0)) rc = 1;
        else if (log && nb_write_file_atomic(log, csv.buf, csv.len)) rc = nb_cli_fail(cmd, "%s", nb_errmsg());
    }
    if (!rc) {
        fprintf(stderr, "trained %lld steps (%lld episodes, %lld updates) in %.1f s, %.0f steps/s; mean return of the "
                        "last 100 episodes %.2f%s%s\n",
                (long long)o.steps, (long long)episodes, (long long)nb_dqn_updates(d), seconds,
                o.steps / fmax(seconds, 1e-9), mean100, out ? "; model: " : "", out ? out : "");
        char ev[2048] = "";
        if (eval_episodes > 0)
            rc = evaluate(cmd, nb_dqn_net(d), env, (int)eval_episodes, EVAL_SEED, 0, ev, sizeof ev);
        if (!rc && json) {
            printf("{\"steps\": %lld, \"train_episodes\": %lld, \"updates\": %lld, \"seconds\": %.3f, "
                   "\"steps_per_second\": %.1f, \"train_mean100\": %.4f",
                   (long long)o.steps, (long long)episodes, (long long)nb_dqn_updates(d), seconds,
                   o.steps / fmax(seconds, 1e-9), mean100);
            if (*ev) printf(", %s", ev);
            else printf(", \"env\": \"%s\"", env);
            printf("}\n");
        }
    }
    free(csv.buf);
    nb_dqn_free(d);
    return rc;
}

/* --- eval and play ----------------------------------------------------------- */

static int eval(int argc, char **argv) {
    const char *cmd = "dqn eval";
    long episodes = 100, seed = EVAL_SEED, threads = 1;
    double eps = 0;
    bool json = false, help = false;
    nb_flag flags[] = {
        {"--episodes", NB_FLAG_INT, &episodes, "episodes to play (100)"},
        {"--seed", NB_FLAG_INT, &seed, "seed of the first episode; the i-th uses seed + i (1000000)"},
        {"--epsilon", NB_FLAG_FLOAT, &eps, "probability of a random action (0: greedy)"},
        {"--threads", NB_FLAG_INT, &threads, "threads (1; 0: NABLA_THREADS, else all cores)"},
        {"--json", NB_FLAG_BOOL, &json, "print the results as one JSON line on stdout"},
        {"--help", NB_FLAG_BOOL, &help, "this help"},
    };
    int nflags = sizeof flags / sizeof flags[0], npos;
    const char *pos[1];
    if (nb_cli_parse(cmd, argc, argv, flags, nflags, pos, 1, &npos)) return 1;
    if (help || npos != 1) {
        nb_cli_usage("dqn", "eval MODEL [--episodes N] [--seed S] [--epsilon E] [--json]", flags, nflags);
        return help ? 0 : 1;
    }
    if (episodes < 1 || episodes > 100000) return nb_cli_fail(cmd, "--episodes: expected 1..100000, got %ld", episodes);
    if (seed < 0) return nb_cli_fail(cmd, "--seed: expected a non-negative integer, got %ld", seed);
    if (!(eps >= 0 && eps <= 1)) return nb_cli_fail(cmd, "--epsilon: expected a probability in [0, 1], got %g", eps);
    nb_set_threads((int)threads);
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
    bool help = false;
    nb_flag flags[] = {
        {"--seed", NB_FLAG_INT, &seed, "the episode's seed (1000000, the first of dqn eval)"},
        {"--delay", NB_FLAG_INT, &delay, "milliseconds between frames (on a terminal: cartpole 20, others 150)"},
        {"--epsilon", NB_FLAG_FLOAT, &eps, "probability of a random action (0: greedy)"},
        {"--help", NB_FLAG_BOOL, &help, "this help"},
    };
    int nflags = sizeof flags / sizeof flags[0], npos;
    const char *pos[1];
    if (nb_cli_parse(cmd, argc, argv, flags, nflags, pos, 1, &npos)) return 1;
    if (help || npos != 1) {
        nb_cli_usage("dqn", "play MODEL [--seed S] [--delay MS] [--epsilon E]", flags, nflags);
        return help ? 0 : 1;
    }
    if (seed < 0) return nb_cli_fail(cmd, "--seed: expected a non-negative integer, got %ld", seed);
    if (!(eps >= 0 && eps <= 1)) return nb_cli_fail(cmd, "--epsilon: expected a probability in [0, 1], got %g", eps);
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
    float *obs = malloc(sizeof(float) * (size_t)nb_env_obs_size(e));
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
    if (argc >= 2 && !strcmp(argv[1], "train")) return train(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "eval")) return eval(argc - 1, argv + 1);
    if (argc >= 2 && !strcmp(argv[1], "play")) return play(argc - 1, argv + 1);
    bool help = argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help"));
    FILE *f = help ? stdout : stderr;
    if (argc >= 2 && !help) fprintf(stderr, "nabla dqn: unknown subcommand '%s'\n", argv[1]);
    fprintf(f, "usage: nabla dqn train cartpole|2048|catch [options]   train a Q-network (deep Q-learning, notes §4.3)\n"
               "       nabla dqn eval MODEL [--episodes N] [--json]     greedy policy against a random one\n"
               "       nabla dqn play MODEL                             watch an episode in the terminal\n"
               "(nabla dqn train --help lists the options)\n");
    return help ? 0 : 2;
}

NB_COMMAND("dqn", cmd_dqn, "deep Q-learning: train, eval, play (cartpole, 2048, catch)")
